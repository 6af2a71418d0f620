package io.mekha.agent.api;

/** Where one VM is in a restart from a checkpoint. */
public enum RestartState {
    /** Its copy is checked and taken for the restart; nothing has been touched yet, and Tr is not given. */
    READY,
    /** Its loaded copy waits for the rendezvous instant Tr. */
    RESTARTING,
    /** Resumed at Tr: the VM runs from the cut. */
    RUNNING,
    /** The restart of this VM failed; see the error. */
    FAILED,
    /** Called off before its Tr: the VM was left as it was (its QEMU from before runs on). */
    CANCELLED;

    public boolean terminal() {
        return this != READY && this != RESTARTING;
    }
}
