package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.RestartStatus;
import io.mekha.agent.api.AgentDtos.VmRestartStatus;
import io.mekha.agent.api.RestartState;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.time.GuestClock;
import io.mekha.model.TimePolicy;
import io.mekha.qmp.QmpEvent;
import io.mekha.qmp.QmpEventQueue;
import io.mekha.storage.StorageLevel;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import org.jboss.logging.Logger;

/**
 * This node's part of the restart protocol: each VM's loaded copy (its own shadow, a partner's
 * copy, a QEMU fed from a held stream or loaded from storage) resumed at the rendezvous instant
 * Tr, the VM's current QEMU paused just before and killed just after, so that two copies never
 * run; then the time policy.
 *
 * <p>Two steps, so that one node's refusal cannot leave the VC half restarted: {@link #prepare}
 * checks and takes every copy (nothing is touched yet), {@link #arm} gives Tr once every node is
 * prepared. {@link #callOff} before a VM's Tr leaves that VM as it was: its current QEMU runs on,
 * a level-0 copy (a shadow, a partner's copy) stays held, a QEMU loaded for the restart is
 * stopped. A prepared restart nobody arms is called off by itself after {@link #PREPARED_HOLD}.
 */
final class Restarts {
    private static final Logger LOG = Logger.getLogger(Restarts.class);
    private static final Duration DEFAULT_SLEW = Duration.ofSeconds(30);

    /**
     * One VM to restart: its paused, loaded QEMU and what it needs for the time policy. It resumes {@code stopLate}
     * after Tr, as late as it stopped after Ts at the cut, so that every VM loses the same time across the restart.
     */
    private record Source(String vm, QemuVm loaded, QemuVm previous, Instant guestClockAtCut, Instant hostTimeAtCut, Duration stopLate,
                          boolean disposable) {
        Source {
            stopLate = stopLate == null || stopLate.isNegative() ? Duration.ZERO : stopLate;
        }

        /** A restart called off: a QEMU loaded for it is stopped; the checkpoint's own level-0 copy stays as it is. */
        void dispose() {
            if (disposable) {
                loaded.kill();
            }
        }
    }

    /** One checkpoint's restart on this node: its copies, checked and taken, and which of them still wait for their Tr. */
    private static final class Restart {
        final String id;
        final TimePolicy policy;
        final Duration slew;
        final StorageLevel level;
        final Map<String, Source> sources = new java.util.LinkedHashMap<>();
        final Map<String, VmRestartStatus> states = new ConcurrentHashMap<>();
        /** The VMs not yet resumed: whoever removes a VM from here (its resume at Tr, or a call-off) decides its fate. */
        final Set<String> waiting = ConcurrentHashMap.newKeySet();
        volatile boolean armed;
        /** Counted down once the arm wrote the copies to the pause journal: a copy's entry is removed only after. */
        final java.util.concurrent.CountDownLatch journaled = new java.util.concurrent.CountDownLatch(1);
        volatile java.util.concurrent.ScheduledFuture<?> expiry;

        Restart(String id, TimePolicy policy, Duration slew, StorageLevel level) {
            this.id = id;
            this.policy = policy;
            this.slew = slew;
            this.level = level;
        }

        boolean over() {
            return states.values().stream().allMatch(v -> v.state().terminal());
        }
    }

    /** How long a prepared restart waits for its Tr before it is called off by itself (its coordinator went away). */
    static final Duration PREPARED_HOLD = Duration.ofMinutes(2);

    private final String node;
    private final VmRegistry vms;
    private final CheckpointSessions sessions;
    private final PartnerCopies partners;
    private final StoredLoads loads;
    private final GuestTime guestTime;
    private final RendezvousClock clock;
    private final ExecutorService workers;
    private final java.util.concurrent.ScheduledExecutorService timers;
    private final PauseJournal journal;
    private final Map<String, Restart> restarts = new ConcurrentHashMap<>();
    /** QEMUs fed from held streams ahead of a restart from memory, by checkpoint and VM. */
    private final Map<String, Map<String, QemuVm>> fed = new ConcurrentHashMap<>();

    Restarts(String node, VmRegistry vms, CheckpointSessions sessions, PartnerCopies partners, StoredLoads loads, GuestTime guestTime,
             RendezvousClock clock, ExecutorService workers, java.util.concurrent.ScheduledExecutorService timers, PauseJournal journal) {
        this.node = node;
        this.journal = journal;
        this.vms = vms;
        this.sessions = sessions;
        this.partners = partners;
        this.loads = loads;
        this.guestTime = guestTime;
        this.clock = clock;
        this.workers = workers;
        this.timers = timers;
    }

    /**
     * Readies a restart from a checkpoint: from L0 its shadows (or partner copies, or QEMUs fed
     * from held streams), from L1/L2 the QEMUs loaded from storage; each checked and taken for
     * this restart. Nothing runs or stops until {@link #arm}.
     *
     * @param only the VMs to restart here (null: every VM this node holds the checkpoint of)
     */
    synchronized RestartStatus prepare(String id, String timePolicy, Duration slewPeriod, StorageLevel level, List<String> only)
            throws AgentException {
        Restart previous = restarts.get(id);
        if (previous != null && !previous.over()) {
            throw AgentException.conflict("a restart from checkpoint " + id + " is already under way on node " + node);
        }
        Duration slew = slewPeriod == null ? DEFAULT_SLEW : slewPeriod;
        List<Source> sources = new ArrayList<>();
        TimePolicy policy;
        if (level == null || level == StorageLevel.L0) {
            policy = fromMemory(id, timePolicy, only, sources);
        } else {
            List<StoredLoads.LoadedVm> loaded = loads.take(id);
            try {
                policy = GuestTime.policy(id, timePolicy != null ? timePolicy : loaded.get(0).checkpointTimePolicy());
                guestTime.requireGuestAgents(id, policy, loaded.stream().map(StoredLoads.LoadedVm::qemu).toList(), false);
            } catch (AgentException e) {
                loaded.forEach(l -> l.qemu().kill());
                throw e;
            }
            for (StoredLoads.LoadedVm l : loaded) {
                sources.add(new Source(l.entry().name(), l.qemu(), null, l.entry().guestClockAtCut(), l.entry().stoppedAt(), l.stopLate(), true));
            }
        }
        Restart restart = new Restart(id, policy, slew, level == null ? StorageLevel.L0 : level);
        for (Source source : sources) {
            restart.sources.put(source.vm(), source);
            restart.waiting.add(source.vm());
            restart.states.put(source.vm(), state(source, policy, RestartState.READY, null));
        }
        restarts.put(id, restart);
        restart.expiry = timers.schedule(() -> callOff(id, "nobody gave its rendezvous instant within " + PREPARED_HOLD.toSeconds() + " s"),
                PREPARED_HOLD.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        return status(id);
    }

    /** Resumes every VM of a {@link #prepare prepared} restart at {@code at} (each as late after it as it stopped after Ts). */
    synchronized RestartStatus arm(String id, Instant at) throws AgentException {
        Restart restart = restarts.get(id);
        if (restart == null) {
            throw AgentException.notFound("no restart from checkpoint " + id + " is prepared on node " + node);
        }
        if (restart.armed || restart.waiting.size() < restart.sources.size()) {
            throw AgentException.conflict("the restart from checkpoint " + id + " on node " + node + " is "
                    + (restart.armed ? "armed already" : "called off: " + restart.states.values().iterator().next().error()));
        }
        restart.armed = true;
        restart.expiry.cancel(false);
        for (Source source : restart.sources.values()) {
            restart.states.put(source.vm(), state(source, restart.policy, RestartState.RESTARTING, null));
            workers.submit(() -> restartOne(restart, source, at));
        }
        // armed: the restart goes ahead, so the next agent on this node resumes each copy at its Tr if this one dies first.
        // Written after the resumes are scheduled, so that the writes never make one late; replied only after them
        for (Source source : restart.sources.values()) {
            try {
                journal.recordRestart(id, source.loaded(), at.plus(source.stopLate()));
            } catch (java.io.IOException e) {
                LOG.warnf("restart of VM '%s' from checkpoint %s: cannot write its pause journal entry (%s); if this agent dies before "
                        + "its Tr, the copy stays paused", source.vm(), id, e.getMessage());
            }
        }
        restart.journaled.countDown();
        return status(id);
    }

    /**
     * Calls a restart off: every VM whose Tr has not come stays as it was (see the class comment).
     * The VMs resumed already run on from the cut. Returns the restart's status (an unknown one: nothing to call off).
     */
    synchronized RestartStatus callOff(String id, String why) {
        Restart restart = restarts.get(id);
        if (restart == null) {
            return new RestartStatus(id, node, null, List.of());
        }
        restart.expiry.cancel(false);
        for (Source source : restart.sources.values()) {
            if (restart.waiting.remove(source.vm())) {
                source.dispose();
                restart.states.put(source.vm(), state(source, restart.policy, RestartState.CANCELLED,
                        "called off before its Tr (" + why + "); its QEMU from before runs on"));
                LOG.infof("restart of VM '%s' from checkpoint %s on node %s called off: %s", source.vm(), id, node, why);
            }
        }
        return new RestartStatus(id, node, restart.level, List.copyOf(restart.states.values()));
    }

    private static VmRestartStatus state(Source source, TimePolicy policy, RestartState state, String error) {
        return running(source, policy, state, null, null, error, null, null);
    }

    private static VmRestartStatus running(Source source, TimePolicy policy, RestartState state, Instant resumedAt, Instant resumeEvent,
                                           String error, GuestClock.Reading after, String note) {
        return new VmRestartStatus(source.vm(), state, resumedAt, resumeEvent, error, policy.displayName(), source.guestClockAtCut(),
                source.hostTimeAtCut(), after == null ? null : after.guest(), after == null ? null : after.host(), note);
    }

    private TimePolicy fromMemory(String id, String timePolicy, List<String> only, List<Source> sources) throws AgentException {
        CheckpointSession session = sessions.find(id).orElse(null);
        List<PartnerCopies.PartnerCopy> copies = partnerCopies(id, session, only);
        if (session == null && copies.isEmpty()) {
            sessions.require(id);
        }
        String defaultPolicy = session != null ? session.timePolicy.name() : copies.get(0).origin.timePolicy();
        TimePolicy policy = GuestTime.policy(id, timePolicy != null ? timePolicy : defaultPolicy);
        List<SessionVm> mine = session == null ? List.of()
                : session.vms.stream().filter(v -> only == null || only.contains(v.name())).toList();
        guestTime.requireGuestAgents(id, policy, mine.stream().map(v -> v.source).toList(), false);
        for (SessionVm v : mine) {
            if (v.phase() != VmPhase.RESUMED) {
                throw AgentException.conflict("checkpoint " + id + " is not complete on node " + node + ": " + session.phases());
            }
        }
        for (PartnerCopies.PartnerCopy c : copies) {
            if (!c.usable()) {
                throw AgentException.conflict("checkpoint " + id + ": the copy of VM '" + c.vm + "' on node " + node + " is "
                        + (c.state() == io.mekha.agent.api.PartnerCopyState.HELD ? "gone" : c.state()));
            }
        }
        for (SessionVm v : mine) {
            if (v.copy() instanceof HeldStream stream) {
                if (!stream.complete()) {
                    throw AgentException.conflict("checkpoint " + id + ": the stream of VM '" + v.name()
                            + "' held in memory is gone; this checkpoint can no longer restart from memory");
                }
                continue;
            }
            QemuVm shadow = v.shadow();
            if (shadow == null || !shadow.isAlive()) {
                throw AgentException.conflict("checkpoint " + id + ": the shadow of VM '" + v.name()
                        + "' is gone; this checkpoint can no longer restart from memory");
            }
            if (shadow.role() != QemuVm.Role.SHADOW) {
                throw AgentException.conflict("checkpoint " + id + ": VM '" + v.name() + "' was already restarted from it");
            }
        }
        for (PartnerCopies.PartnerCopy c : copies) {
            PartnerCopies.Origin o = c.origin;
            // a QEMU fed from a partner's stream is this restart's; a partner's shadow is the checkpoint's level 0 and stays if called off
            boolean stream = c.heldState() != null;
            sources.add(new Source(c.vm, stream ? takeFed(id, c.vm, c) : c.shadow(), null, o.guestClockAtCut(), o.stoppedAt(), o.stopLate(),
                    stream));
        }
        for (SessionVm v : mine) {
            boolean stream = v.copy() instanceof HeldStream;
            QemuVm loaded = stream ? takeFed(id, v.name(), v) : v.shadow();
            // a QEMU fed from a held stream is this restart's; a shadow is the checkpoint's level 0 and stays if called off
            sources.add(new Source(v.name(), loaded, stream ? null : v.source, v.guestClockAtCut, v.frozenAt, v.stopLate, stream));
        }
        return policy;
    }

    /**
     * The copies this node holds for other nodes' VMs that this restart takes ({@code only} names them: the coordinator
     * restarts a VM from a partner's copy only where its own node cannot).
     */
    private List<PartnerCopies.PartnerCopy> partnerCopies(String id, CheckpointSession session, List<String> only) {
        return partners.of(id).values().stream().filter(c -> only != null && only.contains(c.vm)
                && (session == null || session.vm(c.vm) == null)).toList();
    }

    private void restartOne(Restart restart, Source source, Instant at) {
        String name = source.vm();
        QemuVm loaded = source.loaded();
        TimePolicy policy = restart.policy;
        Instant resumeAt = at.plus(source.stopLate());
        try (QmpEventQueue events = loaded.qmp().listen(Set.of("RESUME"))) {
            clock.sleepUntil(resumeAt);
            if (!restart.waiting.remove(name)) {
                return; // called off before its Tr: callOff has set its state
            }
            List<QemuVm> before = new ArrayList<>();
            QemuVm current = vms.current(name);
            if (current != null && current != loaded && current.isAlive()) {
                before.add(current);
            }
            if (source.previous() != null && source.previous() != current && source.previous().isAlive()) {
                before.add(source.previous());
            }
            before.forEach(Restarts::pauseOrKill); // two copies never run, not even for the instant of the switch
            loaded.promote();
            loaded.qmp().execute("cont");
            Instant resumedAt = clock.now();
            before.forEach(QemuVm::kill);
            QmpEvent resume = events.poll(Duration.ofSeconds(2));
            vms.replace(loaded);
            // Slew moves the clock from the moment it starts: the restart's own reading is the one just before it,
            // not one taken while the slew already runs (under load that came ~0.1 s late, i.e. ~0.26 s of slew)
            GuestClock.Reading beforeSlew = policy == TimePolicy.SLEW ? guestTime.read(loaded) : null;
            String note = guestTime.apply(loaded, policy, restart.slew);
            // the shortest of 3 round trips, as after a checkpoint's resume: a guest just resumed under TCG answers its first
            // guest-get-time slowly, and one trip of ~36 ms put the reading ±18 ms off (CutAtTsTest's reported jump)
            GuestClock.Reading after = beforeSlew != null ? beforeSlew : guestTime.read(loaded, 3);
            restart.states.put(name, running(source, policy, RestartState.RUNNING, resumedAt, resume == null ? null : resume.timestamp(), null,
                    after, note));
        } catch (Exception e) {
            LOG.errorf("restart of VM '%s' on node %s failed: %s", name, node, e.getMessage());
            restart.states.put(name, state(source, policy, RestartState.FAILED, e.getMessage()));
        } finally {
            try {
                restart.journaled.await(10, java.util.concurrent.TimeUnit.SECONDS); // never clear before the arm wrote it
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            journal.clearRestart(restart.id, name);
        }
    }

    /** Stops the VM's QEMU from before the restart for the switch (it is killed once the copy runs); kills it if it does not answer. */
    private static void pauseOrKill(QemuVm qemu) {
        if (qemu.role() == QemuVm.Role.ATTACHED) {
            return; // KubeVirt's old instance: not Mekha's to pause (kill() only lets go of its monitor)
        }
        try {
            qemu.qmp().execute("stop");
        } catch (Exception e) {
            qemu.kill();
        }
    }

    RestartStatus status(String id) throws AgentException {
        Restart restart = restarts.get(id);
        if (restart == null) {
            throw AgentException.notFound("no restart from checkpoint " + id + " on node " + node);
        }
        return new RestartStatus(id, node, restart.level, List.copyOf(restart.states.values()));
    }

    /**
     * Readies a restart from memory where level 0 is a held stream (KubeVirt): feeds each VM's
     * stream to the QEMU waiting for it (the restored VMI's), in parallel, and returns once every
     * one is loaded and paused at the cut, so that the coordinator picks Tr after the slow part.
     * Shadows need nothing: they are loaded already. Returns the VMs fed.
     */
    List<String> loadLevel0(String id, List<String> only) throws AgentException, InterruptedException {
        Ids.require(id);
        CheckpointSession session = sessions.find(id).orElse(null);
        List<Level0Holding> streams = new ArrayList<>();
        if (session != null) {
            for (SessionVm v : session.vms) {
                if ((only == null || only.contains(v.name())) && v.copy() instanceof HeldStream held) {
                    if (v.phase() != VmPhase.RESUMED || !held.complete()) {
                        throw AgentException.conflict("checkpoint " + id + " is not complete in memory on node " + node + ": " + session.phases());
                    }
                    streams.add(v);
                }
            }
        }
        for (PartnerCopies.PartnerCopy c : partnerCopies(id, session, only)) {
            if (c.heldState() != null) {
                if (!c.usable()) {
                    throw AgentException.conflict("checkpoint " + id + ": the copy of VM '" + c.vm + "' on node " + node + " is " + c.state());
                }
                streams.add(c); // a partner's shadow needs nothing: it is loaded already
            }
        }
        Map<String, QemuVm> fedHere = fed.computeIfAbsent(id, k -> new ConcurrentHashMap<>());
        List<Future<?>> feeding = new ArrayList<>();
        Map<String, String> errors = new ConcurrentHashMap<>();
        for (Level0Holding h : streams) {
            String vm = h.spec().name();
            feeding.add(workers.submit(() -> {
                try {
                    fedHere.put(vm, loads.feedHeld(id, h.heldState(), h.spec(), h.accelerator()));
                } catch (AgentException e) {
                    errors.put(vm, e.getMessage());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
        }
        for (Future<?> f : feeding) {
            try {
                f.get();
            } catch (ExecutionException e) {
                errors.put("?", String.valueOf(e.getCause()));
            }
        }
        if (!errors.isEmpty()) {
            throw AgentException.failed("checkpoint " + id + " on node " + node + ": loading from memory failed: " + errors, null);
        }
        return streams.stream().map(h -> h.spec().name()).toList();
    }

    /** The QEMU fed from a VM's held stream by {@link #loadLevel0}; fed now if it was not (then the resume may come late). */
    private QemuVm takeFed(String id, String vm, Level0Holding holding) throws AgentException {
        QemuVm qemu = fed.getOrDefault(id, Map.of()).remove(vm);
        if (qemu != null) {
            return qemu;
        }
        try {
            return loads.feedHeld(id, holding.heldState(), holding.spec(), holding.accelerator());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw AgentException.failed("interrupted while loading VM '" + vm + "' from memory", e);
        }
    }

    /** Stops the QEMUs fed for a restart from memory that will not happen. */
    boolean dropFed(String id) {
        Map<String, QemuVm> qemus = fed.remove(id);
        if (qemus != null) {
            qemus.values().forEach(QemuVm::kill);
        }
        return qemus != null && !qemus.isEmpty();
    }
}
