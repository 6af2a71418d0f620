package io.mekha.qmp;

/** A wait on the QMP peer (greeting, reply, event) exceeded its timeout. */
public final class QmpTimeoutException extends QmpException {
    public QmpTimeoutException(String message) {
        super(message);
    }
}
