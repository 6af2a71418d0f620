package io.mekha.agent.qemu;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * When QEMU took a running guest out of the running state, from QEMU's own trace of its run state ({@code -trace
 * enable=runstate_set -msg timestamp=on -D file}): a line such as
 * {@code 4242@1796666672.937700:runstate_set current_run_state 9 (running) new_state 4 (paused)}.
 *
 * <p>QEMU writes that line in its main loop as it takes a {@code stop}, right before it freezes the guest's clocks; its
 * {@code STOP} event comes only after every vCPU paused, and the monitor's command may wait before that for the main loop
 * to get a CPU and the big QEMU lock. On two cores shared by three busy guests, the freeze came up to 18 ms after the
 * stop's send. The trace is the one instant in stock QEMU that says when the guest's clock stopped. QEMU writes it to the
 * file before it answers the {@code stop}, so it is there when the reply is.
 */
public final class RunStateTrace {
    private static final Pattern LEFT_RUNNING = Pattern.compile(
            "^\\d+@(\\d+)\\.(\\d{6}):runstate_set current_run_state \\d+ \\(running\\) new_state \\d+ \\([\\w-]+\\)\\s*$",
            Pattern.MULTILINE);
    /** A run-state line is under 120 bytes; a few dozen changes of state since the last stop are far inside this. */
    private static final int TAIL = 16 << 10;

    private RunStateTrace() {
    }

    /**
     * The host instant (the system's realtime clock, microseconds) of the last change of {@code trace} out of the running
     * state; null when the file is missing or holds none (a QEMU started by someone else, one without the trace).
     */
    public static Instant lastLeftRunning(Path trace) {
        if (trace == null) {
            return null;
        }
        String tail;
        try (RandomAccessFile file = new RandomAccessFile(trace.toFile(), "r")) {
            long length = file.length();
            long from = Math.max(0, length - TAIL);
            byte[] bytes = new byte[(int) (length - from)];
            file.seek(from);
            file.readFully(bytes);
            tail = new String(bytes, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            return null;
        }
        Matcher m = LEFT_RUNNING.matcher(tail);
        Instant last = null;
        while (m.find()) {
            last = Instant.ofEpochSecond(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)) * 1_000);
        }
        return last;
    }
}
