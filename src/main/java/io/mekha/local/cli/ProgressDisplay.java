package io.mekha.local.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Progress of one long step (a flush, a copy to L2, a restore's reads and loads, the live stage) on the console: on a
 * terminal one line redrawn in place a few times a second; otherwise a plain line when the step starts, every
 * {@link #PLAIN_EVERY} while it runs and when it ends, so that logs stay readable. Lines the step prints meanwhile
 * ({@link #println}) go above the progress line.
 */
final class ProgressDisplay implements AutoCloseable {
    static final Duration REDRAW_EVERY = Duration.ofMillis(250);
    static final Duration PLAIN_EVERY = Duration.ofSeconds(5);

    /** How progress is shown. */
    enum Style {
        /** One line redrawn in place (carriage return, erase to the end of the line). */
        TERMINAL,
        /** Plain lines now and then. */
        PLAIN,
        /** Nothing. */
        NONE;

        /** {@code auto} (a terminal when the console is one and TERM is not "dumb"), {@code terminal}, {@code plain} or {@code none}. */
        static Style parse(String option) {
            return switch (option.toLowerCase(Locale.ROOT)) {
                case "auto" -> System.console() != null && !"dumb".equals(System.getenv("TERM")) ? TERMINAL : PLAIN;
                case "terminal", "tty" -> TERMINAL;
                case "plain" -> PLAIN;
                case "none", "off" -> NONE;
                default -> throw new IllegalArgumentException("--progress must be auto, terminal, plain or none, not '" + option + "'");
            };
        }
    }

    /**
     * One look at the step.
     *
     * @param what what is happening now, in a few words ("vm2 verifying", "3 VMs live, pass 4")
     * @param bytes bytes since the step began (for the rate)
     * @param bytesAre what those bytes are, one word after the figure ("sent", "moved")
     * @param fraction 0..1 done, -1 when not known
     * @param boundLeft when the step has a deadline rather than a size (the live stage's bound): time left to it; else null
     * @param ended the step is over (every part finished or failed)
     */
    record Reading(String what, long bytes, String bytesAre, double fraction, Duration boundLeft, boolean ended) {}

    /** Where readings come from; may fail (an agent busy or gone), and then the display keeps its last reading. */
    interface Source {
        Reading read() throws Exception;
    }

    private final PrintWriter out;
    private final Style style;
    private final String label;
    private final Source source;
    private final LongSupplier nanos;
    private final long startedAt;
    private ScheduledExecutorService timer;
    private Reading last;
    private long lastPlainAt = Long.MIN_VALUE;
    private int drawnWidth;
    private boolean closed;
    /** The last line is out: nothing more is drawn. */
    private boolean finished;

    ProgressDisplay(PrintWriter out, Style style, String label, Source source, LongSupplier nanos) {
        this.out = out;
        this.style = style;
        this.label = label;
        this.source = source;
        this.nanos = nanos;
        this.startedAt = nanos.getAsLong();
    }

    /** Starts showing {@code label}'s progress from {@code source}, redrawn on a timer of its own until {@link #close}. */
    static ProgressDisplay start(PrintWriter out, Style style, String label, Source source) {
        ProgressDisplay display = new ProgressDisplay(out, style, label, source, System::nanoTime);
        if (style != Style.NONE) {
            display.update();
            display.timer = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "progress");
                t.setDaemon(true);
                return t;
            });
            long every = (style == Style.TERMINAL ? REDRAW_EVERY : Duration.ofSeconds(1)).toMillis();
            display.timer.scheduleWithFixedDelay(display::update, every, every, TimeUnit.MILLISECONDS);
        }
        return display;
    }

    /** Takes a reading and shows it as the style wants (on a terminal every time, plain lines at most every {@link #PLAIN_EVERY}). */
    synchronized void update() {
        if (closed || style == Style.NONE) {
            return;
        }
        if (finished) {
            return; // over: nothing more to ask (the live stage's source stops asking before the cut)
        }
        try {
            last = source.read();
        } catch (Exception e) {
            // keep the last reading: the agent answers again in a moment, or the step itself reports the failure
        }
        if (last == null) {
            return;
        }
        long now = nanos.getAsLong();
        if (last.ended()) {
            finish(line(last, now)); // over before the command's step is: said once, and no more redrawing under later lines
        } else if (style == Style.TERMINAL) {
            draw(line(last, now));
        } else if (lastPlainAt == Long.MIN_VALUE || now - lastPlainAt >= PLAIN_EVERY.toNanos()) {
            lastPlainAt = now;
            out.println(line(last, now));
            out.flush();
        }
    }

    /** A line of the step's own (a step name, a warning): printed above the progress line, which is drawn again below it. */
    synchronized void println(String text) {
        if (style == Style.TERMINAL && drawnWidth > 0) {
            out.print("\r\u001b[K");
            out.println(text);
            drawnWidth = 0;
            if (last != null && !closed && !finished) {
                draw(line(last, nanos.getAsLong()));
            }
        } else {
            out.println(text);
        }
        out.flush();
    }

    /** The step is over: a last reading, shown whatever the time, and the line ended. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        if (timer != null) {
            timer.shutdownNow();
        }
        if (style != Style.NONE && !finished) {
            try {
                last = source.read();
            } catch (Exception e) {
                // the last reading stands
            }
            if (last != null) {
                finish(line(last, nanos.getAsLong()));
            }
        }
        closed = true;
    }

    /** The last line: drawn over the progress line on a terminal and ended there, or printed. */
    private void finish(String text) {
        if (style == Style.TERMINAL) {
            draw(text);
            out.println();
        } else {
            out.println(text);
        }
        out.flush();
        finished = true;
        drawnWidth = 0;
    }

    private void draw(String text) {
        out.print("\r" + text + "\u001b[K");
        out.flush();
        drawnWidth = text.length();
    }

    /** The reading as one line: what, how much, how fast, how long left. */
    String line(Reading r, long now) {
        double seconds = Math.max(1e-3, (now - startedAt) / 1e9);
        StringBuilder s = new StringBuilder(label).append(": ");
        if (r.fraction() >= 0) {
            s.append(String.format(Locale.ROOT, "%3.0f %% ", Math.min(100, r.fraction() * 100)));
            if (style == Style.TERMINAL) {
                s.append(bar(r.fraction())).append(' ');
            }
        }
        s.append(r.what());
        s.append(String.format(Locale.ROOT, ", %s %s, %s/s", size(r.bytes()), r.bytesAre(), size((long) (r.bytes() / seconds))));
        if (r.ended()) {
            s.append(String.format(Locale.ROOT, ", done in %.1f s", seconds));
        } else if (r.boundLeft() != null) {
            s.append(", at most ").append(duration(r.boundLeft().toMillis() / 1000.0)).append(" left");
        } else if (r.fraction() > 0.02 && seconds >= 0.5) {
            s.append(", about ").append(duration(seconds * (1 - r.fraction()) / r.fraction())).append(" left");
        } else {
            s.append(", ").append(String.format(Locale.ROOT, "%.0f s", seconds)).append(" so far");
        }
        return s.toString();
    }

    private static String bar(double fraction) {
        int width = 20;
        int full = (int) Math.round(Math.min(1, fraction) * width);
        return "[" + "#".repeat(full) + ".".repeat(width - full) + "]";
    }

    static String size(long bytes) {
        if (bytes < 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f KiB", bytes / 1024.0);
        }
        if (bytes < 1024L * 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024));
        }
        return String.format(Locale.ROOT, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    }

    private static String duration(double seconds) {
        if (seconds < 60) {
            return String.format(Locale.ROOT, "%.0f s", Math.ceil(seconds - 1e-6));
        }
        return String.format(Locale.ROOT, "%d min %02d s", (long) seconds / 60, (long) seconds % 60);
    }
}
