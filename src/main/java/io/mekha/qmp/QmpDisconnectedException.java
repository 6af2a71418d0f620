package io.mekha.qmp;

/** The connection ended (peer closed, socket error, protocol error, or close()) while a call was pending. */
public final class QmpDisconnectedException extends QmpException {
    public QmpDisconnectedException(String message, Throwable cause) {
        super(message, cause);
    }
}
