package io.mekha.agent.api;

/** A copy of another node's level 0 held by this node. */
public enum PartnerCopyState {
    /** Its QEMU waits for, or is taking in, the state. */
    LOADING,
    /** Loaded and paused: a restart can use it. */
    HELD,
    /** Loading failed; see the error (its QEMU was stopped). */
    FAILED
}
