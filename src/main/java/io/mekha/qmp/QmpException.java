package io.mekha.qmp;

import java.io.IOException;

/** Base of every failure the QMP client reports; subclasses say which kind. */
public class QmpException extends IOException {
    public QmpException(String message) {
        super(message);
    }

    public QmpException(String message, Throwable cause) {
        super(message, cause);
    }
}
