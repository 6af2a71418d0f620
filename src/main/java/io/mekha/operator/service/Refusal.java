package io.mekha.operator.service;

/** Why the operator will not act on a resource as written: a machine reason for conditions and a message saying what to fix. */
public final class Refusal extends Exception {
    private final String reason;

    public Refusal(String reason, String message) {
        super(message);
        this.reason = reason;
    }

    public String reason() {
        return reason;
    }
}
