package io.mekha.protocol;

import io.mekha.agent.api.ErrorKind;

/**
 * A call to an agent failed: unreachable, refused, or answered with an error. {@link #kind} says what it means;
 * {@link #status} is the HTTP status it came with (0 when the agent never answered).
 */
public class AgentCallException extends Exception {
    private final ErrorKind kind;
    private final int status;

    public AgentCallException(ErrorKind kind, int status, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
        this.status = status;
    }

    /** The agent never answered (connection refused, reset, timed out). */
    public static AgentCallException unreachable(String message, Throwable cause) {
        return new AgentCallException(ErrorKind.UNREACHABLE, 0, message, cause);
    }

    public ErrorKind kind() {
        return kind;
    }

    public int status() {
        return status;
    }

    public boolean unreachable() {
        return kind == ErrorKind.UNREACHABLE;
    }

    /** The agent holds no such thing (checkpoint, VM, restart, stored copy). */
    public boolean notFound() {
        return kind == ErrorKind.NOT_FOUND;
    }
}
