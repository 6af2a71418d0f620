package io.mekha.agent.api;

import java.util.EnumSet;
import java.util.Set;

/**
 * Where one VM is in a checkpoint, as its agent reports it, and the moves between phases that
 * are allowed ({@link #canMoveTo}): forward only, a live stage may start over (QEMU finished it
 * early), and nothing leaves a terminal phase, so a late failure cannot overwrite an abort.
 */
public enum VmPhase {
    /** Level-0 copy made, transfer configured. */
    PREPARED,
    /** Copying while the VM runs; the local ending condition is not met yet. */
    LIVE,
    /** The local ending condition is met; still copying while waiting for the others. */
    LIVE_DONE,
    /** Stop scheduled for the rendezvous instant Ts. */
    SUSPENDING,
    /** Stopped at Ts; the last dirty pages are flowing to the level-0 copy. */
    SUSPENDED,
    /** The level-0 copy holds the whole state at the cut; the VM is still paused. */
    CAPTURED,
    /**
     * Resumed at Tr and running, its checkpoint not complete yet: a background snapshot streams the VM's RAM as it was at
     * the cut on to the level-0 copy while the guest runs. RESUMED follows once the copy holds all of it.
     */
    STREAMING,
    /** Resumed at Tr; the checkpoint of this VM is complete. */
    RESUMED,
    /**
     * Something failed; see the error. The VM was resumed if Mekha had paused it, or, when that failed too, the
     * agent's resume guard keeps resuming it until QEMU runs it, and the error says so ("still paused: ...").
     */
    FAILED,
    /** Aborted on request (or by the agent's watchdog); the level-0 copy is gone and the VM runs. */
    ABORTED;

    public boolean terminal() {
        return this == RESUMED || this == FAILED || this == ABORTED;
    }

    /** Whether the VM runs again after its cut (its checkpoint complete, or its RAM still streaming to level 0). */
    public boolean runsAgain() {
        return this == STREAMING || this == RESUMED;
    }

    /** Whether a VM in this phase may move to {@code next}. */
    public boolean canMoveTo(VmPhase next) {
        return next(this).contains(next);
    }

    private static Set<VmPhase> next(VmPhase from) {
        return switch (from) {
            case PREPARED -> EnumSet.of(LIVE, LIVE_DONE, FAILED, ABORTED);
            // LIVE -> LIVE and LIVE_DONE -> LIVE: the live stage started over after QEMU finished it by itself
            case LIVE, LIVE_DONE -> EnumSet.of(LIVE, LIVE_DONE, SUSPENDING, FAILED, ABORTED);
            case SUSPENDING -> EnumSet.of(SUSPENDED, FAILED, ABORTED);
            case SUSPENDED -> EnumSet.of(CAPTURED, FAILED, ABORTED);
            case CAPTURED -> EnumSet.of(STREAMING, RESUMED, FAILED, ABORTED);
            case STREAMING -> EnumSet.of(RESUMED, FAILED, ABORTED);
            case RESUMED, FAILED, ABORTED -> EnumSet.noneOf(VmPhase.class);
        };
    }
}
