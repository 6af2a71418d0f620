package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.model.TimePolicy;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ScheduledFuture;

/** One checkpoint's state on one agent: its VMs ({@link SessionVm}), its watchdogs, and the pause deadline. */
final class CheckpointSession {
    final String id;
    final List<SessionVm> vms;
    final Duration pauseDeadline;
    final TimePolicy timePolicy;
    final SessionChanges changes;
    /** Held while the live stage is polled and while a step moves every VM at once (suspend, abort). */
    final Object stepLock = new Object();
    volatile ScheduledFuture<?> poller;
    volatile ScheduledFuture<?> watchdog;
    /**
     * Ts, once the suspend arrives: the session's cut thread, started at prepare, waits on it, so that no thread is
     * created between the suspend and the cut. Cancelled by an abort.
     */
    final java.util.concurrent.CompletableFuture<java.time.Instant> cutAt = new java.util.concurrent.CompletableFuture<>();
    /** How long before Ts the suspend arrived (for the log when a cut comes late). */
    volatile Duration suspendHeardLead;

    CheckpointSession(String id, List<SessionVm> vms, Duration pauseDeadline, TimePolicy timePolicy, SessionChanges changes) {
        this.id = id;
        this.vms = List.copyOf(vms);
        this.pauseDeadline = pauseDeadline;
        this.timePolicy = timePolicy;
        this.changes = changes;
    }

    boolean all(VmPhase phase) {
        return vms.stream().allMatch(v -> v.phase() == phase);
    }

    boolean any(VmPhase phase) {
        return vms.stream().anyMatch(v -> v.phase() == phase);
    }

    boolean complete() {
        return all(VmPhase.RESUMED);
    }

    /** The VM of this checkpoint by that name, or null. */
    SessionVm vm(String name) {
        return vms.stream().filter(v -> v.name().equals(name)).findFirst().orElse(null);
    }

    void cancelTimers() {
        ScheduledFuture<?> p = poller;
        if (p != null) {
            p.cancel(false);
        }
        cancelWatchdog();
    }

    void cancelWatchdog() {
        ScheduledFuture<?> w = watchdog;
        if (w != null) {
            w.cancel(false);
        }
    }

    CheckpointStatus status(String node, java.time.Instant now) {
        long version = changes.version(); // read first: a change after it is seen by the next wait
        return new CheckpointStatus(id, node, vms.stream().map(SessionVm::status).toList(), version, now);
    }

    /** "vm1=LIVE, vm2=CAPTURED", for messages. */
    String phases() {
        StringBuilder s = new StringBuilder();
        for (SessionVm v : vms) {
            s.append(s.length() == 0 ? "" : ", ").append(v.name()).append('=').append(v.phase());
        }
        return s.toString();
    }
}
