package io.mekha.agent.api;

/** Where one VM is in a restart from a checkpoint. */
public enum RestartState {
    /** Its loaded copy waits for the rendezvous instant Tr. */
    RESTARTING,
    /** Resumed at Tr: the VM runs from the cut. */
    RUNNING,
    /** The restart of this VM failed; see the error. */
    FAILED;

    public boolean terminal() {
        return this != RESTARTING;
    }
}
