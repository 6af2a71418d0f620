package io.mekha.agent.qemu;

/** A VM could not be started or did not boot; the message says which VM and why. */
public class VmStartException extends Exception {
    public VmStartException(String message) {
        super(message);
    }

    public VmStartException(String message, Throwable cause) {
        super(message, cause);
    }
}
