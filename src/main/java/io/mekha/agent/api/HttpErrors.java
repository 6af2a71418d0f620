package io.mekha.agent.api;

/** The one place error kinds meet HTTP statuses: the agent's server answers with these, its clients read them back. */
public final class HttpErrors {
    private HttpErrors() {}

    public static int status(ErrorKind kind) {
        return switch (kind) {
            case INVALID_REQUEST -> 400;
            case UNAUTHENTICATED -> 401;
            case FORBIDDEN -> 403;
            case NOT_FOUND -> 404;
            case METHOD_NOT_ALLOWED -> 405;
            case CONFLICT -> 409;
            case UNPROCESSABLE -> 422;
            case NO_ROOM -> 507;
            case FAILED -> 500;
            case UNAVAILABLE -> 503;
            case UNREACHABLE -> throw new IllegalArgumentException("UNREACHABLE is never answered: it is the absence of an answer");
        };
    }

    /** The kind of an error reply that did not say its own (an older agent, a proxy's page). */
    public static ErrorKind kind(int status) {
        return switch (status) {
            case 0 -> ErrorKind.UNREACHABLE;
            case 400 -> ErrorKind.INVALID_REQUEST;
            case 401 -> ErrorKind.UNAUTHENTICATED;
            case 403 -> ErrorKind.FORBIDDEN;
            case 404 -> ErrorKind.NOT_FOUND;
            case 405 -> ErrorKind.METHOD_NOT_ALLOWED;
            case 409 -> ErrorKind.CONFLICT;
            case 422 -> ErrorKind.UNPROCESSABLE;
            case 503, 502, 504 -> ErrorKind.UNAVAILABLE;
            case 507 -> ErrorKind.NO_ROOM;
            default -> status >= 400 && status < 500 ? ErrorKind.INVALID_REQUEST : ErrorKind.FAILED;
        };
    }
}
