package io.mekha.protocol;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * The loop guard of automatic recovery. A VC that fails again right after each restore (a VM that crashes on its own, a
 * node that keeps dropping out) must not be restored for ever: at most {@code max} recoveries within any {@code window},
 * and each one waits a backoff after the one before it (doubling from {@code firstBackoff}, at most {@code maxBackoff}).
 * Once the limit is reached recovery stops, with the reason. Not thread-safe: one watcher owns it.
 */
public final class RecoveryBudget {
    private final int max;
    private final Duration window;
    private final Duration firstBackoff;
    private final Duration maxBackoff;
    private final Deque<Instant> recent = new ArrayDeque<>();

    /** What the budget says about a recovery wanted now. */
    public record Decision(boolean allowed, Duration delay, String refusal) {
        /** Recovery stopped for good: {@link #refusal} says why. */
        public boolean exhausted() {
            return refusal != null;
        }
    }

    public RecoveryBudget(int max, Duration window, Duration firstBackoff, Duration maxBackoff) {
        if (max < 1) {
            throw new IllegalArgumentException("the recovery limit must be at least 1 (it is " + max + ")");
        }
        if (window.isNegative() || window.isZero()) {
            throw new IllegalArgumentException("the recovery window must be positive (it is " + window + ")");
        }
        if (firstBackoff.isNegative() || maxBackoff.compareTo(firstBackoff) < 0) {
            throw new IllegalArgumentException("backoff " + firstBackoff + " up to " + maxBackoff + ": need 0 <= first <= max");
        }
        this.max = max;
        this.window = window;
        this.firstBackoff = firstBackoff;
        this.maxBackoff = maxBackoff;
    }

    /** Whether a recovery may start at {@code now}, must wait, or may never start again. */
    public Decision next(Instant now) {
        while (!recent.isEmpty() && !recent.peekFirst().isAfter(now.minus(window))) {
            recent.removeFirst();
        }
        if (recent.size() >= max) {
            return new Decision(false, null, (recent.size() == 1 ? "1 recovery" : recent.size() + " recoveries") + " within " + human(window)
                    + " already, the limit: the VC keeps"
                    + " failing after each restore; automatic recovery stopped. Find the cause (the VMs' consoles, the agents' logs),"
                    + " then restore by hand and protect the VC again");
        }
        if (recent.isEmpty()) {
            return new Decision(true, Duration.ZERO, null);
        }
        Duration backoff = firstBackoff.multipliedBy(1L << Math.min(recent.size() - 1, 30));
        if (backoff.compareTo(maxBackoff) > 0) {
            backoff = maxBackoff;
        }
        Duration wait = Duration.between(now, recent.peekLast().plus(backoff));
        return wait.isNegative() || wait.isZero() ? new Decision(true, Duration.ZERO, null) : new Decision(false, wait, null);
    }

    /** A recovery started at {@code at}. */
    public void started(Instant at) {
        recent.addLast(at);
    }

    /** The limit, as said to users: "3 within 10m". */
    public String describe() {
        return max + " within " + human(window) + ", backoff " + human(firstBackoff) + " doubling to " + human(maxBackoff);
    }

    static String human(Duration d) {
        return d.toString().substring(2).toLowerCase(java.util.Locale.ROOT);
    }
}
