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
 * Tr, after the VM's current QEMU is killed so that two copies never run; then the time policy.
 */
final class Restarts {
    private static final Logger LOG = Logger.getLogger(Restarts.class);
    private static final Duration DEFAULT_SLEW = Duration.ofSeconds(30);

    /**
     * One VM to restart: its paused, loaded QEMU and what it needs for the time policy. It resumes {@code stopLate}
     * after Tr, as late as it stopped after Ts at the cut, so that every VM loses the same time across the restart.
     */
    private record Source(String vm, QemuVm loaded, QemuVm previous, Instant guestClockAtCut, Instant hostTimeAtCut, Duration stopLate) {
        Source {
            stopLate = stopLate == null || stopLate.isNegative() ? Duration.ZERO : stopLate;
        }
    }

    private final String node;
    private final VmRegistry vms;
    private final CheckpointSessions sessions;
    private final PartnerCopies partners;
    private final StoredLoads loads;
    private final GuestTime guestTime;
    private final RendezvousClock clock;
    private final ExecutorService workers;
    private final Map<String, Map<String, VmRestartStatus>> restarts = new ConcurrentHashMap<>();
    /** QEMUs fed from held streams ahead of a restart from memory, by checkpoint and VM. */
    private final Map<String, Map<String, QemuVm>> fed = new ConcurrentHashMap<>();

    Restarts(String node, VmRegistry vms, CheckpointSessions sessions, PartnerCopies partners, StoredLoads loads, GuestTime guestTime,
             RendezvousClock clock, ExecutorService workers) {
        this.node = node;
        this.vms = vms;
        this.sessions = sessions;
        this.partners = partners;
        this.loads = loads;
        this.guestTime = guestTime;
        this.clock = clock;
        this.workers = workers;
    }

    /**
     * Restarts VMs from a checkpoint, resuming them together at {@code at} (each as late after it as it stopped after
     * Ts, so that every guest loses the same time): from L0 its shadows (or
     * partner copies, or QEMUs fed from held streams), from L1/L2 the QEMUs loaded from storage.
     *
     * @param only the VMs to restart here (null: every VM this node holds the checkpoint of)
     */
    RestartStatus restart(String id, Instant at, String timePolicy, Duration slewPeriod, StorageLevel level, List<String> only)
            throws AgentException {
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
                sources.add(new Source(l.entry().name(), l.qemu(), null, l.entry().guestClockAtCut(), l.entry().stoppedAt(), l.stopLate()));
            }
        }
        Map<String, VmRestartStatus> states = new ConcurrentHashMap<>();
        restarts.put(id, states);
        for (Source source : sources) {
            states.put(source.vm(), new VmRestartStatus(source.vm(), RestartState.RESTARTING, null, null, null, policy.displayName(),
                    source.guestClockAtCut(), source.hostTimeAtCut(), null, null, null));
            workers.submit(() -> restartOne(source, at, policy, slew, states));
        }
        return status(id);
    }

    private TimePolicy fromMemory(String id, String timePolicy, List<String> only, List<Source> sources) throws AgentException {
        CheckpointSession session = sessions.find(id).orElse(null);
        Map<String, PartnerCopies.PartnerCopy> held = partners.of(id);
        if (session == null && held.isEmpty()) {
            sessions.require(id);
        }
        String defaultPolicy = session != null ? session.timePolicy.name() : held.values().iterator().next().request.timePolicy();
        TimePolicy policy = GuestTime.policy(id, timePolicy != null ? timePolicy : defaultPolicy);
        List<SessionVm> mine = session == null ? List.of()
                : session.vms.stream().filter(v -> only == null || only.contains(v.name())).toList();
        List<PartnerCopies.PartnerCopy> copies = held.values().stream().filter(c -> only != null && only.contains(c.request.vm())
                && mine.stream().noneMatch(v -> v.name().equals(c.request.vm()))).toList();
        guestTime.requireGuestAgents(id, policy, mine.stream().map(v -> v.source).toList(), false);
        for (SessionVm v : mine) {
            if (v.phase() != VmPhase.RESUMED) {
                throw AgentException.conflict("checkpoint " + id + " is not complete on node " + node + ": " + session.phases());
            }
        }
        for (PartnerCopies.PartnerCopy c : copies) {
            if (!c.usable()) {
                throw AgentException.conflict("checkpoint " + id + ": the copy of VM '" + c.request.vm() + "' on node " + node
                        + " is " + (c.qemu.isAlive() ? c.state() : "gone"));
            }
            sources.add(new Source(c.request.vm(), c.qemu, null, c.request.guestClockAtCut(), c.request.stoppedAt(), c.request.stopLate()));
        }
        for (SessionVm v : mine) {
            if (v.copy() instanceof HeldStream stream) {
                if (!stream.complete()) {
                    throw AgentException.conflict("checkpoint " + id + ": the stream of VM '" + v.name()
                            + "' held in memory is gone; this checkpoint can no longer restart from memory");
                }
                continue;
            }
            QemuVm shadow = v.transfer.level0() instanceof io.mekha.agent.level0.ShadowCopy s ? s.qemu() : null;
            if (shadow == null || !shadow.isAlive()) {
                throw AgentException.conflict("checkpoint " + id + ": the shadow of VM '" + v.name()
                        + "' is gone; this checkpoint can no longer restart from memory");
            }
            if (shadow.role() != QemuVm.Role.SHADOW) {
                throw AgentException.conflict("checkpoint " + id + ": VM '" + v.name() + "' was already restarted from it");
            }
        }
        for (SessionVm v : mine) {
            boolean stream = v.copy() instanceof HeldStream;
            QemuVm loaded = stream ? takeFed(id, v) : ((io.mekha.agent.level0.ShadowCopy) v.copy()).qemu();
            sources.add(new Source(v.name(), loaded, stream ? null : v.source, v.guestClockAtCut, v.stopIssuedAt, v.stopLate));
        }
        return policy;
    }

    private void restartOne(Source source, Instant at, TimePolicy policy, Duration slewPeriod, Map<String, VmRestartStatus> states) {
        String name = source.vm();
        QemuVm loaded = source.loaded();
        try {
            QemuVm current = vms.current(name);
            if (current != null && current != loaded && current.isAlive()) {
                current.kill();
            }
            if (source.previous() != null && source.previous().isAlive()) {
                source.previous().kill();
            }
            try (QmpEventQueue events = loaded.qmp().listen(Set.of("RESUME"))) {
                loaded.promote();
                clock.sleepUntil(at.plus(source.stopLate()));
                loaded.qmp().execute("cont");
                Instant resumedAt = clock.now();
                QmpEvent resume = events.poll(Duration.ofSeconds(2));
                vms.replace(loaded);
                // Slew moves the clock from the moment it starts: the restart's own reading is the one just before it,
                // not one taken while the slew already runs (under load that came ~0.1 s late, i.e. ~0.26 s of slew)
                GuestClock.Reading beforeSlew = policy == TimePolicy.SLEW ? guestTime.read(loaded) : null;
                String note = guestTime.apply(loaded, policy, slewPeriod);
                GuestClock.Reading after = beforeSlew != null ? beforeSlew : guestTime.read(loaded);
                states.put(name, new VmRestartStatus(name, RestartState.RUNNING, resumedAt, resume == null ? null : resume.timestamp(), null,
                        policy.displayName(), source.guestClockAtCut(), source.hostTimeAtCut(), after == null ? null : after.guest(),
                        after == null ? null : after.host(), note));
            }
        } catch (Exception e) {
            LOG.errorf("restart of VM '%s' on node %s failed: %s", name, node, e.getMessage());
            states.put(name, new VmRestartStatus(name, RestartState.FAILED, null, null, e.getMessage(), policy.displayName(),
                    source.guestClockAtCut(), source.hostTimeAtCut(), null, null, null));
        }
    }

    RestartStatus status(String id) throws AgentException {
        Map<String, VmRestartStatus> states = restarts.get(id);
        if (states == null) {
            throw AgentException.notFound("no restart from checkpoint " + id + " on node " + node);
        }
        return new RestartStatus(id, node, List.copyOf(states.values()));
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
        if (session == null) {
            return List.of(); // a node holding partner copies only: they are shadows, loaded already
        }
        List<SessionVm> streams = session.vms.stream()
                .filter(v -> (only == null || only.contains(v.name())) && v.copy() instanceof HeldStream).toList();
        for (SessionVm v : streams) {
            if (v.phase() != VmPhase.RESUMED || !((HeldStream) v.copy()).complete()) {
                throw AgentException.conflict("checkpoint " + id + " is not complete in memory on node " + node + ": " + session.phases());
            }
        }
        Map<String, QemuVm> fedHere = fed.computeIfAbsent(id, k -> new ConcurrentHashMap<>());
        List<Future<?>> feeding = new ArrayList<>();
        Map<String, String> errors = new ConcurrentHashMap<>();
        for (SessionVm v : streams) {
            feeding.add(workers.submit(() -> {
                try {
                    fedHere.put(v.name(), loads.feedHeld((HeldStream) v.copy(), v.spec(), v.accelerator()));
                } catch (AgentException e) {
                    errors.put(v.name(), e.getMessage());
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
        return streams.stream().map(SessionVm::name).toList();
    }

    /** The QEMU fed from a VM's held stream by {@link #loadLevel0}; fed now if it was not (then the resume may come late). */
    private QemuVm takeFed(String id, SessionVm v) throws AgentException {
        QemuVm qemu = fed.getOrDefault(id, Map.of()).remove(v.name());
        if (qemu != null) {
            return qemu;
        }
        try {
            return loads.feedHeld((HeldStream) v.copy(), v.spec(), v.accelerator());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw AgentException.failed("interrupted while loading VM '" + v.name() + "' from memory", e);
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
