package io.mekha.model;

import java.util.Locale;

/** What a guest's realtime clock does across a restart from a checkpoint. */
public enum TimePolicy {
    /** The guest's clocks continue from the instant of the cut, as if the time between never happened (default). */
    VIRTUAL,
    /** The guest's realtime clock jumps to the host's time on restart (today's KubeVirt behaviour); monotonic continues. */
    STEP,
    /** The guest's realtime clock converges to the host's time gradually, never stepping backwards. */
    SLEW;

    public static TimePolicy parse(String text) {
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown time policy '" + text + "': use Virtual, Step or Slew");
        }
    }

    /** Step and Slew change the guest's clock from inside, through its guest agent. */
    public boolean needsGuestAgent() {
        return this != VIRTUAL;
    }

    public String displayName() {
        return name().charAt(0) + name().substring(1).toLowerCase(Locale.ROOT);
    }
}
