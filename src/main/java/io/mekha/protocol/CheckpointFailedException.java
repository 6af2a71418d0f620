package io.mekha.protocol;

/** A coordinated checkpoint or restart did not complete; the message says what failed and what state the VMs are in. */
public class CheckpointFailedException extends Exception {
    public CheckpointFailedException(String message) {
        super(message);
    }

    public CheckpointFailedException(String message, Throwable cause) {
        super(message, cause);
    }
}
