package io.mekha.qmp;

/** QEMU refused a command: carries QEMU's error {@code class} and {@code desc}. */
public final class QmpCommandError extends QmpException {
    private final String command;
    private final String errorClass;
    private final String description;

    public QmpCommandError(String command, String errorClass, String description) {
        super("QMP command '" + command + "' failed: " + errorClass + ": " + description);
        this.command = command;
        this.errorClass = errorClass;
        this.description = description;
    }

    public String command() {
        return command;
    }

    /** QEMU's error class, e.g. {@code GenericError}, {@code CommandNotFound}. */
    public String errorClass() {
        return errorClass;
    }

    public String description() {
        return description;
    }
}
