package io.mekha.agent.api;

/** Where one VM is in a checkpoint, as its agent reports it. */
public enum VmPhase {
    /** Shadow started, transfer configured. */
    PREPARED,
    /** Copying while the VM runs; the local ending condition is not met yet. */
    LIVE,
    /** The local ending condition is met; still copying while waiting for the others. */
    LIVE_DONE,
    /** Stop scheduled for the rendezvous instant Ts. */
    SUSPENDING,
    /** Stopped at Ts; the last dirty pages are flowing to the shadow. */
    SUSPENDED,
    /** The shadow holds the whole state at the cut; the VM is still paused. */
    CAPTURED,
    /** Resumed at Tr; the checkpoint of this VM is complete. */
    RESUMED,
    /** Something failed; see the error. The VM was resumed if Mekha had paused it. */
    FAILED,
    /** Aborted on request (or by the agent's watchdog); the shadow is gone and the VM runs. */
    ABORTED;

    public boolean terminal() {
        return this == RESUMED || this == FAILED || this == ABORTED;
    }
}
