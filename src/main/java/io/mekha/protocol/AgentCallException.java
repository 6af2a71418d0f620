package io.mekha.protocol;

/** A call to an agent failed: unreachable, refused, or answered with an error (status 0 when it never answered). */
public class AgentCallException extends Exception {
    private final int status;

    public AgentCallException(int status, String message, Throwable cause) {
        super(message, cause);
        this.status = status;
    }

    public int status() {
        return status;
    }

    /** The agent never answered (connection refused, reset, timed out). */
    public boolean unreachable() {
        return status == 0;
    }
}
