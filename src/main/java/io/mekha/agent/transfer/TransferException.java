package io.mekha.agent.transfer;

/** A checkpoint transfer could not be done; the message names the VM, the step and what to do. */
public class TransferException extends Exception {
    public TransferException(String message) {
        super(message);
    }

    public TransferException(String message, Throwable cause) {
        super(message, cause);
    }
}
