package io.mekha.qmp;

/** The peer sent something that is not QMP: malformed JSON, no greeting, a reply nobody asked for. */
public final class QmpProtocolException extends QmpException {
    public QmpProtocolException(String message) {
        super(message);
    }

    public QmpProtocolException(String message, Throwable cause) {
        super(message, cause);
    }
}
