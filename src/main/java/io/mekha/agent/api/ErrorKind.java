package io.mekha.agent.api;

/**
 * What an agent's refusal or failure means, so that callers decide on meaning ("the agent holds
 * no such checkpoint") rather than on transport codes. The HTTP layers on both ends map these to
 * and from statuses ({@link HttpErrors}); nothing else does.
 */
public enum ErrorKind {
    /** The request is malformed or asks for something impossible: fix the request. */
    INVALID_REQUEST,
    /** No credentials, or credentials the agent does not accept. */
    UNAUTHENTICATED,
    /** A known identity that may not do this. */
    FORBIDDEN,
    /** No such VM, checkpoint, restart or stored copy on this node. */
    NOT_FOUND,
    /** The endpoint exists, the method does not. */
    METHOD_NOT_ALLOWED,
    /** The state forbids it now: a VM in another checkpoint, a checkpoint not complete, a copy already streamed. */
    CONFLICT,
    /** Understood and allowed, but this node cannot do it: a VM that cannot start, a feature the runtime lacks. */
    UNPROCESSABLE,
    /** Not enough memory for a level-0 copy, or the storage target is full or failing. */
    NO_ROOM,
    /** The agent tried and failed (QEMU refused, I/O broke). */
    FAILED,
    /** The agent cannot answer now (shutting down, its authenticator unreachable). */
    UNAVAILABLE,
    /** No answer at all (connection refused, reset, timed out): only ever seen by callers. */
    UNREACHABLE
}
