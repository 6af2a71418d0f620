package io.mekha.agent;

import io.mekha.agent.api.ErrorKind;

/** A request the agent refuses or cannot carry out, and what kind of refusal it is ({@link ErrorKind}). */
public class AgentException extends Exception {
    private final ErrorKind kind;

    public AgentException(ErrorKind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public AgentException(ErrorKind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public ErrorKind kind() {
        return kind;
    }

    public static AgentException invalid(String message) {
        return new AgentException(ErrorKind.INVALID_REQUEST, message);
    }

    /** Who is asking is known, and may not do this. */
    public static AgentException forbidden(String message) {
        return new AgentException(ErrorKind.FORBIDDEN, message);
    }

    public static AgentException notFound(String message) {
        return new AgentException(ErrorKind.NOT_FOUND, message);
    }

    public static AgentException conflict(String message) {
        return new AgentException(ErrorKind.CONFLICT, message);
    }

    public static AgentException unprocessable(String message, Throwable cause) {
        return new AgentException(ErrorKind.UNPROCESSABLE, message, cause);
    }

    public static AgentException noRoom(String message, Throwable cause) {
        return new AgentException(ErrorKind.NO_ROOM, message, cause);
    }

    public static AgentException failed(String message, Throwable cause) {
        return new AgentException(ErrorKind.FAILED, message, cause);
    }
}
