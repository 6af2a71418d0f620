package io.mekha.model;

import java.util.Locale;

/** How a VM's state reaches its shadow. */
public enum TransferMode {
    /** Memory-bound timed-multiplex transfer: bounded precopy, then a stop at a chosen instant. */
    MTD,
    /** The classic baseline: pause, copy everything, resume. */
    STOP_AND_COPY,
    /** QEMU's copy-on-write background-snapshot: point-in-time at its start, a pause of about a millisecond. */
    BACKGROUND_SNAPSHOT;

    /** Accepts the names users write: {@code MTD}, {@code StopAndCopy}, {@code stop-and-copy}, {@code BackgroundSnapshot}. */
    public static TransferMode parse(String text) {
        String key = text.trim().replace("-", "").replace("_", "").toUpperCase(Locale.ROOT);
        for (TransferMode mode : values()) {
            if (mode.name().replace("_", "").equals(key)) {
                return mode;
            }
        }
        throw new IllegalArgumentException("unknown transfer mode '" + text + "': use MTD, StopAndCopy or BackgroundSnapshot");
    }

    public String displayName() {
        return switch (this) {
            case MTD -> "MTD";
            case STOP_AND_COPY -> "StopAndCopy";
            case BACKGROUND_SNAPSHOT -> "BackgroundSnapshot";
        };
    }
}
