package io.mekha.local.cli;

import java.io.PrintStream;
import java.time.Duration;

/** Numbered progress lines for long steps, each ending with how long it took. */
final class Progress {
    private final PrintStream out;
    private final int steps;
    private int step;
    private long started;

    Progress(PrintStream out, int steps) {
        this.out = out;
        this.steps = steps;
    }

    void begin(String what) {
        step++;
        started = System.nanoTime();
        out.printf("[%d/%d] %s ... ", step, steps, what);
        out.flush();
    }

    void done(String result) {
        out.printf("%s (%.1f s)%n", result, Duration.ofNanos(System.nanoTime() - started).toMillis() / 1000.0);
    }

    void note(String text) {
        out.println("      " + text);
    }
}
