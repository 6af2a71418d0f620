package io.mekha.agent.storage;

/** A stored VM state that cannot be written, read or trusted; the message names the file and the check that failed. */
public final class StoredStateException extends Exception {
    public StoredStateException(String message) {
        super(message);
    }

    public StoredStateException(String message, Throwable cause) {
        super(message, cause);
    }
}
