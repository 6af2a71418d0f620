package io.mekha.protocol;

/** Hears the steps of a coordinated checkpoint or restart, for progress display and events. */
@FunctionalInterface
public interface ProtocolListener {
    ProtocolListener NONE = step -> { };

    void step(String description);
}
