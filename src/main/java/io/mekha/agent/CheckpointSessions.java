package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.time.GuestClock;
import io.mekha.agent.transfer.TransferException;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * This node's part of the checkpoint protocol: prepare (lock, level-0 copies, live stage), the
 * live stage's local ending condition, suspend at Ts, capture, resume at Tr, abort, and the
 * watchdogs that never leave a VM paused when the coordinator goes silent.
 */
final class CheckpointSessions {
    private static final Logger LOG = Logger.getLogger(CheckpointSessions.class);
    /** With no suspend this long after the live stage's own bound, the coordinator is presumed gone. */
    private static final Duration SUSPEND_GRACE = Duration.ofSeconds(60);

    private final String node;
    private final VmRegistry vms;
    private final VmLocks locks;
    private final TransferFactory transfers;
    private final GuestTime guestTime;
    private final RendezvousClock clock;
    private final ScheduledExecutorService timers;
    private final ExecutorService workers;
    private final LiveStages liveStages;
    private final ResumeGuard guard;
    private final PauseJournal journal;
    private final Map<String, CheckpointSession> sessions = new ConcurrentHashMap<>();
    /** Memory this node promised other nodes' level-0 copies that have not arrived yet: not free for its own checkpoints. */
    private final java.util.function.LongSupplier promisedMiB;

    /** @param promisedMiB memory promised to other nodes' level-0 copies not yet here ({@link PartnerCopies#promisedMiB}) */
    CheckpointSessions(String node, VmRegistry vms, VmLocks locks, TransferFactory transfers, GuestTime guestTime, RendezvousClock clock,
                       ScheduledExecutorService timers, ExecutorService workers, ResumeGuard guard,
                       PauseJournal journal, java.util.function.LongSupplier promisedMiB) {
        this.promisedMiB = promisedMiB;
        this.node = node;
        this.vms = vms;
        this.locks = locks;
        this.transfers = transfers;
        this.guestTime = guestTime;
        this.clock = clock;
        this.timers = timers;
        this.workers = workers;
        this.guard = guard;
        this.journal = journal;
        this.liveStages = new LiveStages(transfers, clock);
    }

    /**
     * The first VM that is not running, said with what to do, or null. A checkpoint resumes every VM it cut at Tr, so one
     * its user paused (KubeVirt's {@code virtctl pause}, libvirt's {@code virsh suspend}, another monitor) would be
     * unpaused behind the user's back: such a VM is refused, before anything is paused.
     */
    private static String pausedByOthers(List<QemuVm> sources) throws AgentException {
        for (QemuVm vm : sources) {
            String status;
            try {
                status = vm.qmp().execute("query-status").path("status").asText();
            } catch (io.mekha.qmp.QmpException e) {
                throw AgentException.conflict("VM '" + vm.name() + "': cannot read its run state (" + e.getMessage() + "); nothing was paused");
            }
            if (!status.equals("running")) {
                return "VM '" + vm.name() + "' is not running (QEMU's run state is '" + status + "'): it was paused by its user, KubeVirt"
                        + " (virtctl pause) or libvirt, not by Mekha, and a checkpoint resumes every VM it cuts; unpause it first"
                        + " (virtctl unpause) or leave it out of the checkpoint";
            }
        }
        return null;
    }

    /** Locks the VMs, makes a level-0 copy for each and starts the live stage. */
    CheckpointStatus prepare(String id, PrepareRequest request) throws AgentException, InterruptedException {
        Ids.require(id);
        if (sessions.containsKey(id)) {
            throw AgentException.conflict("checkpoint " + id + " already exists on node " + node);
        }
        PreparePlan plan = PreparePlan.of(id, request);
        List<QemuVm> sources = new ArrayList<>();
        for (String name : request.vms()) {
            sources.add(vms.require(name));
        }
        guestTime.requireGuestAgents(id, plan.timePolicy(), sources, true);
        String impostor = vms.identityProblem(sources);
        if (impostor != null) {
            throw AgentException.unprocessable("checkpoint " + id + " on node " + node + ": " + impostor + "; nothing was paused", null);
        }
        String paused = pausedByOthers(sources);
        if (paused != null) {
            throw AgentException.conflict("checkpoint " + id + " on node " + node + ": " + paused + "; nothing was paused");
        }
        String shortfall = transfers.level0Shortfall(sources, promisedMiB.getAsLong());
        if (shortfall != null) {
            throw AgentException.unprocessable("checkpoint " + id + " on node " + node + ": " + shortfall + "; nothing was paused", null);
        }
        locks.lockAll(request.vms(), id);
        try {
            // on disk before anything can be paused, and off the suspend's path: an agent that dies while VMs are paused
            // (or may be) leaves word for the next one, which resumes whichever of them is not running
            for (QemuVm vm : sources) {
                try {
                    journal.record(id, vm);
                } catch (java.io.IOException e) {
                    throw AgentException.failed("checkpoint " + id + " on node " + node + ": cannot write down what it may pause ("
                            + e.getMessage() + "); nothing was paused", e);
                }
            }
            CheckpointSession session = start(id, plan, sources);
            sessions.put(id, session);
            workers.submit(() -> awaitCut(session));
            session.poller = timers.scheduleWithFixedDelay(() -> liveStages.poll(session), 0, LiveStages.POLL.toMillis(), TimeUnit.MILLISECONDS);
            Duration noSuspendLimit = plan.bounds().maxLive().multipliedBy(2).plus(SUSPEND_GRACE);
            session.watchdog = timers.schedule(() -> abandonIfNotSuspended(session, noSuspendLimit),
                    noSuspendLimit.toMillis(), TimeUnit.MILLISECONDS);
            LOG.infof("checkpoint %s: %s live stage started for %s on node %s", id, plan.mode().displayName(), request.vms(), node);
            return session.status(node, clock.now());
        } catch (AgentException | InterruptedException | RuntimeException e) {
            request.vms().forEach(vm -> {
                locks.unlock(vm, id);
                journal.clear(id, vm);
            });
            throw e;
        }
    }

    private CheckpointSession start(String id, PreparePlan plan, List<QemuVm> sources) throws AgentException, InterruptedException {
        // the guest clocks, read while every VM surely runs (a paused guest's agent cannot answer, and nothing
        // may delay the stop at Ts); extrapolated to the cut, over a live stage of seconds
        Map<String, GuestClock.Reading> clocksBefore = new ConcurrentHashMap<>();
        for (QemuVm vm : sources) {
            GuestClock.Reading reading = guestTime.read(vm);
            if (reading != null) {
                clocksBefore.put(vm.name(), reading);
            }
        }
        SessionChanges changes = new SessionChanges();
        List<SessionVm> prepared = new ArrayList<>();
        try {
            for (QemuVm vm : sources) {
                SessionVm v = new SessionVm(id, vm, transfers.prepare(vm, plan.mode(), plan.boundsFor(vm.name())), changes);
                v.clockBeforeLive = clocksBefore.get(vm.name());
                prepared.add(v);
            }
            for (SessionVm v : prepared) {
                v.transfer.startLive();
                if (plan.mode() == TransferMode.MTD) {
                    v.moveTo(VmPhase.LIVE);
                } else {
                    v.liveDoneAt = clock.now();
                    v.moveTo(VmPhase.LIVE_DONE);
                }
            }
        } catch (TransferException | QmpException | RuntimeException e) {
            prepared.forEach(v -> v.transfer.abort());
            throw AgentException.failed("checkpoint " + id + " on node " + node + ": prepare failed: " + e.getMessage(), e);
        }
        return new CheckpointSession(id, prepared, plan.pauseDeadline(), plan.timePolicy(), changes);
    }

    /**
     * Stops every VM of the checkpoint at {@code at} (this agent's clock), then waits for the level-0 copies to fill.
     * One thread cuts them all: it waits until the instant and sends each VM's stop without waiting for replies, so
     * the VMs of a node stop within microseconds of each other.
     */
    CheckpointStatus suspend(String id, Instant at) throws AgentException {
        CheckpointSession session = require(id);
        synchronized (session.stepLock) {
            for (SessionVm v : session.vms) {
                if (v.phase() != VmPhase.LIVE && v.phase() != VmPhase.LIVE_DONE) {
                    throw AgentException.conflict("checkpoint " + id + ": VM '" + v.name() + "' is " + v.phase()
                            + ", cannot suspend" + (v.error() == null ? "" : " (" + v.error() + ")"));
                }
            }
            session.cancelTimers();
            session.vms.forEach(v -> v.moveTo(VmPhase.SUSPENDING));
        }
        session.suspendHeardLead = Duration.between(clock.now(), at);
        session.cutAt.complete(at);
        // the watchdog: never leave a VM paused if the coordinator does not come back with a resume
        Duration untilDeadline = Duration.between(clock.now(), at).plus(session.pauseDeadline);
        session.watchdog = timers.schedule(() -> resumeOnSilence(session), Math.max(0, untilDeadline.toMillis()), TimeUnit.MILLISECONDS);
        return session.status(node, clock.now());
    }

    /** The session's cut thread: waits for the suspend's Ts, then cuts; ends with nothing done if the session is aborted first. */
    private void awaitCut(CheckpointSession session) {
        Instant at;
        try {
            at = session.cutAt.get();
        } catch (java.util.concurrent.CancellationException | java.util.concurrent.ExecutionException e) {
            return;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        cut(session, at);
    }

    private void cut(CheckpointSession session, Instant at) {
        for (SessionVm v : session.vms) {
            try {
                v.transfer.prepareStop();
            } catch (Exception e) {
                LOG.debugf("VM '%s': stop not prepared (%s); it is sent unprepared", v.name(), e.getMessage());
            }
        }
        Duration late;
        try {
            late = clock.sleepUntil(at);
        } catch (InterruptedException e) {
            session.vms.forEach(v -> fail(v, "interrupted before the cut"));
            return;
        }
        List<SessionVm> stopped = new ArrayList<>();
        // under the step lock: an abort that came while this thread waited for Ts is not undone by a late stop
        synchronized (session.stepLock) {
            for (SessionVm v : session.vms) {
                if (v.phase() != VmPhase.SUSPENDING) {
                    continue;
                }
                try {
                    // read before the write: the guest's clock cannot freeze before it, and the write itself (the stop and
                    // the final pass's parameters behind it) once took over a millisecond on a busy core
                    Instant sending = clock.now();
                    v.transfer.stop();
                    v.stopIssuedAt = sending;
                    stopped.add(v);
                } catch (Exception e) {
                    fail(v, "suspend failed: " + e.getMessage());
                }
            }
        }
        if (late.toMillis() >= 1) { // told after the stops, never before them
            LOG.warnf("checkpoint %s: the cut on node %s came %d ms after Ts (the suspend was heard %s before it)", session.id, node,
                    late.toMillis(), session.suspendHeardLead);
        }
        // the last VM's capture on this thread: a node of one VM starts no thread at the cut
        for (int i = 0; i < stopped.size() - 1; i++) {
            SessionVm v = stopped.get(i);
            workers.submit(() -> capture(v, at));
        }
        if (!stopped.isEmpty()) {
            capture(stopped.get(stopped.size() - 1), at);
        }
    }

    private void capture(SessionVm v, Instant at) {
        try {
            v.transfer.completeSuspend();
            if (v.transfer.pausedByOthersAtCut()) {
                journal.clear(v.checkpoint, v.name()); // not Mekha's pause: no later agent may resume it either
                v.noteResume("left paused: it was paused by someone else (its user, libvirt) before the cut, and Mekha resumes"
                        + " only what it paused");
            }
            // QEMU freezes the guest clock as its main loop takes the stop, then waits for the vCPUs to pause, and only
            // then sends its STOP event (up to tens of ms later on busy shared cores). The freeze itself is in QEMU's
            // run-state trace where the agent started QEMU; elsewhere the stop's send is the better instant of the two
            // (docs/cut-at-ts.md: the stop waited up to 18 ms for QEMU's main loop, and the pauses differed by as much)
            Duration froze = v.transfer.freezeAfterStop();
            Instant frozenAt = froze == null ? v.stopIssuedAt : v.stopIssuedAt.plus(froze);
            v.frozenAt = frozenAt;
            v.stopLate = Duration.between(at, frozenAt);
            if (v.clockBeforeLive != null) {
                v.guestClockAtCut = v.clockBeforeLive.guestAt(frozenAt).minus(v.pausedDuringLive);
            }
            v.moveTo(VmPhase.SUSPENDED);
            v.transfer.awaitCaptured();
            v.capturedAt = clock.now();
            v.moveTo(VmPhase.CAPTURED);
        } catch (Exception e) {
            fail(v, "suspend/capture failed: " + e.getMessage());
        }
    }

    /**
     * Lets every VM of the checkpoint run again at {@code at}: only once all of them are captured (the barrier). One
     * thread sends every VM's {@code cont}, each as late after {@code at} as its stop came after Ts, so that every VM
     * pauses Tr - Ts and the guests' clocks keep their distances; the watchdog stays until every VM runs again.
     */
    CheckpointStatus resume(String id, Instant at) throws AgentException {
        CheckpointSession session = require(id);
        if (!session.all(VmPhase.CAPTURED)) {
            throw AgentException.conflict("checkpoint " + id + ": cannot resume before every VM on node " + node
                    + " is captured: " + session.phases());
        }
        workers.submit(() -> resumeAll(session, at));
        return session.status(node, clock.now());
    }

    /**
     * Resumes at {@code at} and answers once every VM runs again (or one failed), or {@code limit} after {@code at}: for
     * every mode but a background snapshot that is the checkpoint's end on this node (RESUMED); a background snapshot's VMs
     * run while their RAM streams on (STREAMING). Nothing is written back before Tr.
     */
    CheckpointStatus resumeAndWait(String id, Instant at, Duration limit) throws AgentException, InterruptedException {
        resume(id, at);
        Duration untilAt = Duration.between(clock.now(), at);
        // running again is the answer (a background snapshot's copy may stream on for seconds: the caller watches RESUMED)
        return awaitAll(require(id), VmPhase::runsAgain, (untilAt.isNegative() ? Duration.ZERO : untilAt).plus(limit));
    }

    private void resumeAll(CheckpointSession session, Instant at) {
        for (SessionVm v : session.vms) {
            try {
                v.transfer.prepareResume();
            } catch (Exception e) {
                LOG.debugf("VM '%s': resume not prepared (%s); it is sent unprepared", v.name(), e.getMessage());
            }
        }
        List<SessionVm> inOrder = new ArrayList<>(session.vms);
        inOrder.sort(java.util.Comparator.comparing(v -> v.stopLate));
        List<SessionVm> sent = new ArrayList<>();
        for (SessionVm v : inOrder) {
            try {
                clock.sleepUntil(at.plus(v.stopLate));
            } catch (InterruptedException e) {
                break; // the watchdog resumes the rest
            }
            try {
                v.transfer.sendResume();
                v.resumedAt = clock.now();
                sent.add(v);
            } catch (Exception e) {
                failAndUnlock(v, session, "resume failed: " + e.getMessage());
            }
        }
        for (SessionVm v : sent) {
            workers.submit(() -> finishResume(session, v));
        }
    }

    private void finishResume(CheckpointSession session, SessionVm v) {
        try {
            v.transfer.completeResume();
            if (v.transfer.streamsAfterResume()) {
                // the VM runs again, its RAM as at the cut still on its way to level 0: nothing is left for a later agent
                // to resume, and once every VM of the session runs the watchdog goes (a copy that is merely slow is no
                // silent coordinator); the stream has a bound of its own (the completion timeout)
                journal.clear(session.id, v.name());
                v.moveTo(VmPhase.STREAMING);
                if (session.vms.stream().allMatch(x -> x.phase().runsAgain())) {
                    session.cancelWatchdog();
                }
                v.transfer.awaitStreamed();
            }
            v.figures = v.transfer.figures(v.liveEndText(), v.transfer.passes());
            Instant measured = guestTime.clockAtCut(v.source, v.figures.resumeAt() != null ? v.figures.resumeAt() : v.resumedAt);
            if (measured != null) {
                v.guestClockAtCut = measured;
            }
            v.moveTo(VmPhase.RESUMED);
            if (session.complete()) {
                session.cancelWatchdog();
            }
            release(v, session.id);
        } catch (Exception e) {
            failAndUnlock(v, session, "resume failed: " + e.getMessage());
        }
    }

    /** Fails the VM; its lock goes once it runs again (at once, unless the resume guard has to get it running first). */
    private void failAndUnlock(SessionVm v, CheckpointSession session, String why) {
        if (!fail(v, why)) {
            release(v, session.id);
        }
    }

    /** The VM runs again (or is gone): its lock goes, and so does its entry in the pause journal. */
    private void release(SessionVm v, String checkpoint) {
        locks.unlock(v.name(), checkpoint);
        journal.clear(checkpoint, v.name());
    }

    /** Undoes the checkpoint: cancels transfers, resumes what Mekha paused, removes the level-0 copies. */
    CheckpointStatus abort(String id, String reason) throws AgentException {
        CheckpointSession session = require(id);
        synchronized (session.stepLock) {
            session.cancelTimers();
            session.cutAt.cancel(false); // a cut thread still waiting for Ts ends
            for (SessionVm v : session.vms) {
                if (v.phase() == VmPhase.RESUMED) {
                    continue; // complete: the checkpoint of this VM stays until discarded
                }
                // the phase first: a capture that fails because this abort cancels its migration must find it ABORTED
                v.end(VmPhase.ABORTED, "aborted: " + (reason == null ? "by the coordinator" : reason));
                v.transfer.abort();
                if (!guardIfLeftPaused(v, "the abort could not resume it")) {
                    release(v, id);
                }
            }
        }
        LOG.infof("checkpoint %s aborted on node %s: %s", id, node, reason);
        return session.status(node, clock.now());
    }

    /**
     * At the agent's start: the VMs an earlier agent on this node paused and did not see running again (it died
     * between a stop and a resume; its sessions are gone, so the coordinator counts the checkpoint aborted) are
     * resumed now, through the resume guard; entries whose QEMU is gone, or is another process by now, are dropped.
     */
    void resumeWhatAnEarlierAgentPaused() {
        for (PauseJournal.Entry entry : journal.leftover()) {
            QemuVm vm;
            try {
                vm = vms.require(entry.vm());
            } catch (AgentException | RuntimeException gone) {
                vm = null;
            }
            if (vm == null || !vm.isAlive() || !PauseJournal.sameProcess(entry, vm)) {
                LOG.infof("pause journal: VM '%s' of checkpoint %s is gone (or another process now); nothing to resume", entry.vm(),
                        entry.checkpoint());
                journal.clear(entry);
                continue;
            }
            String name = entry.vm();
            QemuVm paused = vm;
            if (entry.restart()) {
                // a restart armed on every node goes ahead: its copy runs from the cut at its Tr, as the other nodes' copies do
                // (late if this agent came up after Tr; its time policy is not applied)
                long until = Duration.between(clock.now(), entry.resumeAt()).toMillis();
                long wait = Math.max(0, until);
                LOG.warnf("VM '%s': a restart from checkpoint %s was armed by an earlier run of this agent for %s: resuming its copy %s",
                        name, entry.checkpoint(), entry.resumeAt(), until > 0 ? "then" : "now, " + (-until) + " ms late");
                timers.schedule(() -> guard.ensureRunning(paused, "restored from checkpoint " + entry.checkpoint()
                                + " and armed by an earlier run of this agent", note -> LOG.infof("VM '%s': %s", name, note), () -> journal.clear(entry)),
                        wait, java.util.concurrent.TimeUnit.MILLISECONDS);
                continue;
            }
            LOG.warnf("VM '%s' was in checkpoint %s of an earlier run of this agent (since %s): resuming it unless it runs",
                    entry.vm(), entry.checkpoint(), entry.since());
            guard.ensureRunning(vm, "paused by an earlier run of this agent for checkpoint " + entry.checkpoint(),
                    note -> LOG.infof("VM '%s': %s", name, note), () -> journal.clear(entry));
        }
    }

    /** The agent is shutting down: every checkpoint not over is aborted, so that what it paused runs again. */
    void abortAll(String reason) {
        for (CheckpointSession session : sessions.values()) {
            if (session.vms.stream().anyMatch(v -> !v.phase().terminal())) {
                try {
                    abort(session.id, reason);
                } catch (AgentException | RuntimeException e) {
                    LOG.errorf("checkpoint %s: abort at shutdown failed: %s", session.id, e.getMessage());
                }
            }
        }
    }

    CheckpointStatus status(String id) throws AgentException {
        return require(id).status(node, clock.now());
    }

    /** The checkpoint's status once a VM changed phase after version {@code seen}, or when {@code timeout} passes. */
    CheckpointStatus awaitChange(String id, long seen, Duration timeout) throws AgentException, InterruptedException {
        CheckpointSession session = require(id);
        session.changes.awaitAfter(seen, timeout);
        return session.status(node, clock.now());
    }

    /**
     * The status once every VM of the checkpoint is in {@code phase}, or one has failed or been aborted, or after
     * {@code timeout}: one answer per agent for a barrier, however many phases its VMs pass on the way.
     */
    CheckpointStatus awaitPhase(String id, VmPhase phase, Duration timeout) throws AgentException, InterruptedException {
        return awaitAll(require(id), p -> p == phase, timeout);
    }

    private CheckpointStatus awaitAll(CheckpointSession session, java.util.function.Predicate<VmPhase> reached, Duration timeout)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        long seen = session.changes.version();
        while (!session.vms.stream().allMatch(v -> reached.test(v.phase()))
                && session.vms.stream().noneMatch(v -> v.phase() == VmPhase.FAILED || v.phase() == VmPhase.ABORTED)) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                break;
            }
            seen = session.changes.awaitAfter(seen, Duration.ofNanos(left));
        }
        return session.status(node, clock.now());
    }

    /** Forgets a checkpoint (aborting it first if it is not over); returns it, so that its level-0 copies can be dropped. */
    Optional<CheckpointSession> remove(String id) throws AgentException {
        CheckpointSession session = require(id);
        if (session.vms.stream().anyMatch(v -> !v.phase().terminal())) {
            abort(id, "discarded");
        }
        return Optional.ofNullable(sessions.remove(id));
    }

    /** Every VM of every session on this node (for the agent's figures). */
    List<SessionVm> allVms() {
        List<SessionVm> all = new ArrayList<>();
        sessions.values().forEach(session -> all.addAll(session.vms));
        return all;
    }

    Optional<CheckpointSession> find(String id) {
        return Optional.ofNullable(sessions.get(id));
    }

    CheckpointSession require(String id) throws AgentException {
        Ids.require(id);
        CheckpointSession session = sessions.get(id);
        if (session == null) {
            throw AgentException.notFound("no checkpoint " + id + " on node " + node);
        }
        return session;
    }

    /** VM {@code vm} of checkpoint {@code id}, complete (resumed after its cut), or a refusal saying why not. */
    SessionVm complete(String id, String vm) throws AgentException {
        SessionVm v = require(id).vm(vm);
        if (v == null) {
            throw AgentException.notFound("checkpoint " + id + " has no VM '" + vm + "' on node " + node);
        }
        if (v.phase() != VmPhase.RESUMED) {
            throw AgentException.conflict("checkpoint " + id + " is not complete for VM '" + vm + "' (" + v.phase() + ")");
        }
        return v;
    }

    /**
     * Ends a VM in FAILED, its transfer undone first (the VM runs again, its copy is dropped), so that whoever reads
     * FAILED finds the VM running. A VM already in a terminal phase stays as it is (an abort got there first).
     */
    static void fail(SessionVm v, String why, String node) {
        if (v.phase().terminal()) {
            LOG.debugf("VM '%s' on node %s stays %s; ignored: %s", v.name(), node, v.phase(), why);
            return;
        }
        v.transfer.abort();
        if (v.end(VmPhase.FAILED, why)) {
            LOG.errorf("VM '%s' on node %s: %s", v.name(), node, why);
        }
    }

    /** {@link #fail(SessionVm, String, String)}, then the resume guard if the VM is still paused; true when guarded. */
    private boolean fail(SessionVm v, String why) {
        fail(v, why, node);
        return guardIfLeftPaused(v, why);
    }

    /**
     * A VM whose transfer could not get it running (its cont failed, the monitor broke) goes to the resume guard,
     * which keeps at it until QEMU runs it; its status says so meanwhile, and its lock is released only then.
     * True when the VM was handed over.
     */
    private boolean guardIfLeftPaused(SessionVm v, String why) {
        if (!v.transfer.leftPaused()) {
            return false;
        }
        v.noteResume("still paused: the agent keeps resuming it");
        guard.ensureRunning(v.source, why, v::noteResume, () -> release(v, v.checkpoint));
        return true;
    }

    private void resumeOnSilence(CheckpointSession session) {
        if (session.complete()) {
            return;
        }
        LOG.errorf("checkpoint %s: no resume within %s of the suspend; resuming every VM this node paused", session.id, session.pauseDeadline);
        try {
            abort(session.id, "no resume from the coordinator within " + session.pauseDeadline + " of the suspend; VMs resumed by the agent");
        } catch (AgentException e) {
            LOG.error("watchdog abort failed", e);
        }
    }

    private void abandonIfNotSuspended(CheckpointSession session, Duration limit) {
        if (session.any(VmPhase.LIVE) || session.any(VmPhase.LIVE_DONE)) {
            try {
                abort(session.id, "no suspend from the coordinator within " + limit + "; level-0 copies removed");
            } catch (AgentException e) {
                LOG.error("watchdog abort failed", e);
            }
        }
    }
}
