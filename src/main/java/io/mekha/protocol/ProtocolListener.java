package io.mekha.protocol;

import java.time.Instant;

/** Hears the steps of a coordinated checkpoint or restart, for progress display, events and status. */
@FunctionalInterface
public interface ProtocolListener {
    ProtocolListener NONE = step -> { };

    /** Where a checkpoint is; the operator keeps it in status so a restarted operator knows what to do. */
    enum Stage {
        PREPARING, LIVE_STAGE, SUSPENDING, CAPTURED, RESUMING,
        /** Every VM runs again, a background snapshot's RAM as at the cut still streaming to level 0; not complete yet. */
        STREAMING,
        RESUMED
    }

    void step(String description);

    /**
     * The checkpoint reached {@code stage}; {@code at} is the rendezvous instant for SUSPENDING (Ts)
     * and RESUMING (Tr), else null. Called on the protocol's own thread: it must not block.
     */
    default void reached(Stage stage, Instant at) {
    }

    /**
     * Every VM of checkpoint {@code id} is captured and still paused at the cut: the moment to take
     * what must be cut with them outside QEMU (on KubeVirt, CSI snapshots of PVC-backed disks). Runs
     * on the protocol's thread and holds the resume until it returns (each VM's agent resumes it by
     * itself after its pause deadline, 60 s by default, if this takes longer); throwing aborts the
     * checkpoint, every VM resumed.
     */
    default void whileSuspended(String id) throws CheckpointFailedException, InterruptedException {
    }
}
