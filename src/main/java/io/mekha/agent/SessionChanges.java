package io.mekha.agent;

import java.time.Duration;

/** A counter that moves whenever a VM of a checkpoint changes phase, for callers that wait for the next change. */
final class SessionChanges {
    private long version;

    synchronized void bump() {
        version++;
        notifyAll();
    }

    synchronized long version() {
        return version;
    }

    /** Waits until the version passes {@code seen} or {@code timeout} passes; returns the version then. */
    synchronized long awaitAfter(long seen, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (version <= seen) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                break;
            }
            wait(Math.max(1, left / 1_000_000), 0);
        }
        return version;
    }
}
