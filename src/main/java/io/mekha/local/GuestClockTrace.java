package io.mekha.local;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A guest's own clock as it moves, seen from the host: follows a VM's console file (QEMU writes the
 * serial port to it as the guest prints) and timestamps every {@code CLOCK seq=N real=S.NS mono=...}
 * line of the guest's {@code clockprobe} the moment it appears. Each line gives guest time minus host
 * time plus the line's way out (the serial port, a look every millisecond); the largest of a few
 * lines is the offset with the least delay in it. A console file that is replaced (a restarted VM's)
 * is followed from its start.
 */
public final class GuestClockTrace implements AutoCloseable {
    private static final Pattern CLOCK = Pattern.compile("CLOCK seq=(\\d+) real=(\\d+)\\.(\\d{9}) mono=(\\d+)\\.(\\d{9})");
    private static final Duration LOOK = Duration.ofMillis(1);

    /** One clockprobe line: the guest's realtime clock, and the host instant the line was seen. */
    public record Sample(long seq, Instant guest, Instant seen) {
        /** Guest minus host, plus this line's delay on the way out (never negative). */
        public Duration offset() {
            return Duration.between(seen, guest);
        }
    }

    private volatile Path console;
    private final List<Sample> samples = new ArrayList<>();
    private final Thread follower;
    private volatile boolean closed;

    private GuestClockTrace(Path console) {
        this.console = console;
        this.follower = new Thread(this::follow, "clock-trace " + console.getFileName());
        follower.setDaemon(true);
    }

    /** Follows {@code console} from its current end. */
    public static GuestClockTrace follow(Path console) {
        GuestClockTrace trace = new GuestClockTrace(console);
        trace.follower.start();
        return trace;
    }

    /** From now on, follows {@code newConsole} (a restarted VM's) from its start. */
    public void switchTo(Path newConsole) {
        console = newConsole;
    }

    private void follow() {
        Path current = null;
        long position = 0;
        StringBuilder partial = new StringBuilder();
        byte[] buffer = new byte[64 << 10];
        while (!closed) {
            try {
                Path target = console;
                if (!target.equals(current)) {
                    position = current == null && Files.exists(target) ? Files.size(target) : 0;
                    current = target;
                    partial.setLength(0);
                }
                if (Files.exists(current) && Files.size(current) > position) {
                    try (RandomAccessFile file = new RandomAccessFile(current.toFile(), "r")) {
                        file.seek(position);
                        int n;
                        while ((n = file.read(buffer)) > 0) {
                            Instant seen = Instant.now();
                            position += n;
                            partial.append(new String(buffer, 0, n, StandardCharsets.ISO_8859_1));
                            take(partial, seen);
                        }
                    }
                }
                Thread.sleep(LOOK.toMillis());
            } catch (IOException e) {
                // the file is being replaced: look again
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /**
     * Takes the clock lines of one read. Only a read with a single clock line says when that line came out: several in
     * one read are a backlog (the file was followed late, a console that fell behind), their moment unknown.
     */
    private void take(StringBuilder partial, Instant seen) {
        int nl;
        List<Sample> read = new ArrayList<>();
        while ((nl = partial.indexOf("\n")) >= 0) {
            Matcher m = CLOCK.matcher(partial.substring(0, nl));
            if (m.find()) {
                read.add(new Sample(Long.parseLong(m.group(1)), Instant.ofEpochSecond(Long.parseLong(m.group(2)), Long.parseLong(m.group(3))),
                        seen));
            }
            partial.delete(0, nl + 1);
        }
        if (read.size() == 1) {
            synchronized (samples) {
                samples.add(read.get(0));
                samples.notifyAll();
            }
        }
    }

    /** Every sample so far. */
    public List<Sample> samples() {
        synchronized (samples) {
            return List.copyOf(samples);
        }
    }

    /** Waits until {@code count} samples were seen after {@code after} (the host's time); returns them. */
    public List<Sample> awaitAfter(Instant after, int count, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (samples) {
            while (true) {
                List<Sample> found = samples.stream().filter(s -> s.seen().isAfter(after)).toList();
                if (found.size() >= count) {
                    return found.subList(0, count);
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IllegalStateException("the guest printed " + found.size() + " of " + count + " clock lines after " + after
                            + " within " + timeout + " (console " + console + ")");
                }
                samples.wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    /** Guest minus host with the least delay among {@code lines}: the best estimate of the guest clock's offset then. */
    public static Duration offset(List<Sample> lines) {
        return lines.stream().map(Sample::offset).max(Duration::compareTo)
                .orElseThrow(() -> new IllegalArgumentException("no clock lines"));
    }

    /** The offset from the last {@code count} lines seen before {@code before}. */
    public Duration offsetBefore(Instant before, int count) {
        List<Sample> earlier = samples().stream().filter(s -> s.seen().isBefore(before)).toList();
        if (earlier.isEmpty()) {
            throw new IllegalStateException("no clock line before " + before + " on " + console);
        }
        return offset(earlier.subList(Math.max(0, earlier.size() - count), earlier.size()));
    }

    @Override
    public void close() {
        closed = true;
        follower.interrupt();
    }
}
