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
    private final Duration spin;

    public RendezvousClock(Clock clock) {
        this(clock, SPIN);
    }

    /**
     * @param spin how long before the instant to stop sleeping and spin: one agent per node spins one core for that
     *     long; many simulated nodes in one process sleep to the instant instead ({@link Duration#ZERO}), or they would
     *     take the CPUs from each other
     */
    public RendezvousClock(Clock clock, Duration spin) {
        this.clock = clock;
        this.spin = spin;
    }

    public Instant now() {
        return clock.instant();
    }

    /** Returns at {@code at} (immediately if it has passed); returns how late it was. */
    public Duration sleepUntil(Instant at) throws InterruptedException {
        long targetNanos = System.nanoTime() + Duration.between(clock.instant(), at).toNanos();
        long sleepNanos;
        while ((sleepNanos = targetNanos - System.nanoTime() - spin.toNanos()) > 0) {
            // to the microsecond (Thread.sleep rounds to milliseconds); parkNanos may return early, hence the loop
            java.util.concurrent.locks.LockSupport.parkNanos(sleepNanos);
            if (Thread.interrupted()) {
                throw new InterruptedException("interrupted waiting for " + at);
            }
        }
        while (System.nanoTime() < targetNanos) {
            Thread.onSpinWait();
        }
        return Duration.between(at, clock.instant());
    }
}
