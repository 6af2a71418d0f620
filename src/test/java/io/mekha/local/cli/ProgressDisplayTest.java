package io.mekha.local.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The progress line's two faces, driven by a clock of the test's own: redrawn in place on a terminal, plain lines in a log. */
@Tag("fast")
class ProgressDisplayTest {
    private static final long MIB = 1024 * 1024;

    private final StringWriter text = new StringWriter();
    private final AtomicLong nanos = new AtomicLong();
    private final Deque<ProgressDisplay.Reading> readings = new ArrayDeque<>();
    private ProgressDisplay.Reading current;

    private ProgressDisplay display(ProgressDisplay.Style style) {
        return new ProgressDisplay(new PrintWriter(text, true), style, "flush to L1", () -> {
            if (!readings.isEmpty()) {
                current = readings.poll();
            }
            return current;
        }, nanos::get);
    }

    private void at(double seconds, String what, long bytes, double fraction, boolean ended) {
        readings.add(new ProgressDisplay.Reading(what, bytes, "moved", fraction, null, ended));
        nanos.set((long) (seconds * 1e9));
    }

    @Test
    void onATerminalOneLineIsRedrawnInPlaceWithRateAndTimeLeft() {
        ProgressDisplay d = display(ProgressDisplay.Style.TERMINAL);
        at(1, "0 of 3 done, vm1 saving", 50 * MIB, 0.25, false);
        d.update();
        at(2, "1 of 3 done, vm2 verifying", 100 * MIB, 0.5, false);
        d.update();
        d.println("==> flushing vm3");
        at(4, "3 of 3 done", 200 * MIB, 1, true);
        d.close();

        String out = text.toString();
        // every drawing starts at the line's beginning and erases what a longer line left
        assertThat(out).startsWith("\rflush to L1:  25 % [#####...............] 0 of 3 done, vm1 saving, 50.0 MiB moved, 50.0 MiB/s,"
                + " about 3 s left\u001b[K");
        assertThat(out).contains("\rflush to L1:  50 % [##########..........] 1 of 3 done, vm2 verifying, 100.0 MiB moved, 50.0 MiB/s,"
                + " about 2 s left\u001b[K");
        // a step's own line goes above the progress line, which is drawn again under it
        assertThat(out).contains("\r\u001b[K==> flushing vm3" + System.lineSeparator() + "\rflush to L1:  50 %");
        assertThat(out).endsWith("\rflush to L1: 100 % [####################] 3 of 3 done, 200.0 MiB moved, 50.0 MiB/s, done in 4.0 s\u001b[K"
                + System.lineSeparator());
    }

    @Test
    void withoutATerminalPlainLinesComeAtMostEveryFewSecondsAndAtTheEnd() {
        ProgressDisplay d = display(ProgressDisplay.Style.PLAIN);
        for (int s = 0; s <= 12; s++) {
            at(s, (s / 4) + " of 3 done", s * 10 * MIB, s / 13.0, false);
            d.update();
        }
        d.println("==> flushing vm3");
        at(13, "3 of 3 done", 130 * MIB, 1, true);
        d.close();

        String out = text.toString();
        assertThat(out).doesNotContain("\r").doesNotContain("\u001b").doesNotContain("[#");
        List<String> lines = out.lines().toList();
        // at 0, 5 and 10 s while it ran (every PLAIN_EVERY), the step's line, and the end
        assertThat(ProgressDisplay.PLAIN_EVERY).isEqualTo(Duration.ofSeconds(5));
        assertThat(lines).hasSize(5);
        assertThat(lines.get(0)).isEqualTo("flush to L1:   0 % 0 of 3 done, 0.0 KiB moved, 0.0 KiB/s, 0 s so far");
        assertThat(lines.get(1)).isEqualTo("flush to L1:  38 % 1 of 3 done, 50.0 MiB moved, 10.0 MiB/s, about 8 s left");
        assertThat(lines.get(2)).isEqualTo("flush to L1:  77 % 2 of 3 done, 100.0 MiB moved, 10.0 MiB/s, about 3 s left");
        assertThat(lines.get(3)).isEqualTo("==> flushing vm3");
        assertThat(lines.get(4)).isEqualTo("flush to L1: 100 % 3 of 3 done, 130.0 MiB moved, 10.0 MiB/s, done in 13.0 s");
    }

    @Test
    void aStepThatEndsBeforeTheCommandsStepIsSaidOnceAndNotDrawnAgain() {
        ProgressDisplay d = display(ProgressDisplay.Style.TERMINAL);
        at(1, "3 VMs, 3 at their local end, pass 4", 40 * MIB, -1, false);
        d.update();
        at(2, "3 VMs past their live stage, 4 passes at most", 60 * MIB, -1, true);
        d.update();
        d.update();
        d.println("==> suspending every VM at Ts");
        d.println("==> resuming every VM at Tr");
        d.close();
        String out = text.toString();
        String nl = System.lineSeparator();
        assertThat(out).endsWith("\rflush to L1: 3 VMs past their live stage, 4 passes at most, 60.0 MiB moved, 30.0 MiB/s, done in 2.0 s\u001b[K" + nl
                + "==> suspending every VM at Ts" + nl + "==> resuming every VM at Tr" + nl);
        assertThat(out.split("done in", -1)).hasSize(2);
    }

    @Test
    void aStepBoundByTimeShowsTheTimeToItsBoundAndAnUnknownSizeNoPercentage() {
        ProgressDisplay d = display(ProgressDisplay.Style.PLAIN);
        readings.add(new ProgressDisplay.Reading("3 VMs, 0 at their local end, pass 2", 30 * MIB, "sent", -1, Duration.ofMillis(27_400), false));
        nanos.set(3_000_000_000L);
        d.update();
        d.close();
        assertThat(text.toString().lines().toList())
                .containsExactly("flush to L1: 3 VMs, 0 at their local end, pass 2, 30.0 MiB sent, 10.0 MiB/s, at most 28 s left",
                        "flush to L1: 3 VMs, 0 at their local end, pass 2, 30.0 MiB sent, 10.0 MiB/s, at most 28 s left");
    }

    @Test
    void noReadingYetPrintsNothingAndAFailingSourceKeepsTheLastReading() {
        ProgressDisplay quiet = new ProgressDisplay(new PrintWriter(text, true), ProgressDisplay.Style.TERMINAL, "restore cp1", () -> null,
                nanos::get);
        quiet.update();
        quiet.close();
        assertThat(text.toString()).isEmpty();

        boolean[] fail = {false};
        ProgressDisplay d = new ProgressDisplay(new PrintWriter(text, true), ProgressDisplay.Style.PLAIN, "restore cp1", () -> {
            if (fail[0]) {
                throw new IllegalStateException("agent busy");
            }
            return new ProgressDisplay.Reading("1 of 2 done, vm1 loading", MIB, "moved", 0.5, null, false);
        }, nanos::get);
        nanos.set(1_000_000_000L);
        d.update();
        fail[0] = true;
        nanos.set(7_000_000_000L);
        d.update();
        d.close();
        assertThat(text.toString().lines()).hasSize(3).allMatch(l -> l.startsWith("restore cp1:  50 % 1 of 2 done, vm1 loading, 1.0 MiB moved"));
    }

    @Test
    void theOptionSaysWhatItTakes() {
        assertThat(ProgressDisplay.Style.parse("plain")).isEqualTo(ProgressDisplay.Style.PLAIN);
        assertThat(ProgressDisplay.Style.parse("TERMINAL")).isEqualTo(ProgressDisplay.Style.TERMINAL);
        assertThat(ProgressDisplay.Style.parse("none")).isEqualTo(ProgressDisplay.Style.NONE);
        // the test JVM has no console: auto means plain lines
        assertThat(ProgressDisplay.Style.parse("auto")).isEqualTo(ProgressDisplay.Style.PLAIN);
        assertThatThrownBy(() -> ProgressDisplay.Style.parse("fancy")).hasMessage("--progress must be auto, terminal, plain or none, not 'fancy'");
    }
}
