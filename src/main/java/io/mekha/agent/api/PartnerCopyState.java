package io.mekha.agent.api;

/** A copy of another node's level 0 held by this node. */
public enum PartnerCopyState {
    /** Room is kept for it (before the checkpoint's cut); the state has not come yet. */
    RESERVED,
    /** Its QEMU waits for, or is taking in, the state (a stream: it is arriving). */
    LOADING,
    /** Loaded and paused: a restart can use it. */
    HELD,
    /** Loading failed; see the error (its QEMU was stopped, what arrived of a stream deleted). */
    FAILED
}
