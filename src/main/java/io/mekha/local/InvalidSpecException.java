package io.mekha.local;

/** A VC description that cannot be used; the message names the file, the field and what to fix. */
public class InvalidSpecException extends Exception {
    public InvalidSpecException(String message) {
        super(message);
    }

    public InvalidSpecException(String message, Throwable cause) {
        super(message, cause);
    }
}
