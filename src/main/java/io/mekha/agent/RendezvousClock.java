package io.mekha.agent;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * Waits for a rendezvous instant precisely: sleeps until shortly before it, then spins the
 * last stretch on the monotonic clock, so that every agent acts at the same instant to within
 * the accuracy of its clock offset rather than the coarseness of the sleep.
 */
public final class RendezvousClock {
    private static final Duration SPIN = Duration.ofMillis(2);

    private final Clock clock;

    public RendezvousClock(Clock clock) {
        this.clock = clock;
    }

    public Instant now() {
        return clock.instant();
    }

    /** Returns at {@code at} (immediately if it has passed); returns how late it was. */
    public Duration sleepUntil(Instant at) throws InterruptedException {
        long targetNanos = System.nanoTime() + Duration.between(clock.instant(), at).toNanos();
        long sleepNanos = targetNanos - System.nanoTime() - SPIN.toNanos();
        if (sleepNanos > 0) {
            Thread.sleep(sleepNanos / 1_000_000, (int) (sleepNanos % 1_000_000));
        }
        while (System.nanoTime() < targetNanos) {
            Thread.onSpinWait();
        }
        return Duration.between(at, clock.instant());
    }
}
