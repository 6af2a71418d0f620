package io.mekha.agent;

/** A request the agent refuses or cannot carry out; {@code status} is the HTTP status to answer with. */
public class AgentException extends Exception {
    private final int status;

    public AgentException(int status, String message) {
        super(message);
        this.status = status;
    }

    public AgentException(int status, String message, Throwable cause) {
        super(message, cause);
        this.status = status;
    }

    public int status() {
        return status;
    }

    public static AgentException badRequest(String message) {
        return new AgentException(400, message);
    }

    public static AgentException notFound(String message) {
        return new AgentException(404, message);
    }

    public static AgentException conflict(String message) {
        return new AgentException(409, message);
    }
}
