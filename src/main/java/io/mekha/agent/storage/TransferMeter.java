package io.mekha.agent.storage;

import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.DoubleSupplier;

/**
 * How far one VM's long transfer has got (a save to a level, a copy between levels, a read-back, a load into QEMU):
 * bytes moved so far, and how many there are in all when that is known. The thread moving the bytes counts; anyone may
 * read. When the size is not known beforehand (a shadow streaming its RAM out), {@link #estimate} says what fraction is
 * done some other way.
 */
public final class TransferMeter {
    /** Counts nothing: for transfers nobody follows. */
    public static final TransferMeter NONE = new TransferMeter("", "", "", -1);

    private final String checkpoint;
    private final String vm;
    private final String purpose;
    private final AtomicLong done = new AtomicLong();
    private final AtomicLong moved = new AtomicLong();
    private final int stages;
    private volatile int stagesDone = -1;
    private final Instant startedAt = Instant.now();
    private volatile String activity;
    private volatile long total;
    private volatile DoubleSupplier estimate;
    private volatile Instant finishedAt;
    private volatile String error;

    /**
     * @param purpose what the transfer is for, in a few words ("flush to L2", "restore from L1"); its stages say what
     *     it is doing now
     * @param total the bytes to move, -1 if not known
     */
    public TransferMeter(String checkpoint, String vm, String purpose, long total) {
        this(checkpoint, vm, purpose, 1, total);
    }

    /** @param stages how many stages the transfer goes through (a save and its read-back: 2), for {@link #overall} */
    public TransferMeter(String checkpoint, String vm, String purpose, int stages, long total) {
        this.stages = Math.max(1, stages);
        this.checkpoint = checkpoint;
        this.vm = vm;
        this.purpose = purpose;
        this.activity = purpose;
        this.total = total;
    }

    public String purpose() {
        return purpose;
    }

    public String checkpoint() {
        return checkpoint;
    }

    public String vm() {
        return vm;
    }

    public String activity() {
        return activity;
    }

    public void add(long bytes) {
        if (this != NONE) {
            done.addAndGet(bytes);
            moved.addAndGet(bytes);
        }
    }

    /**
     * A next stage of the same transfer (reading back what was written): counting starts again from 0 of {@code bytes}.
     */
    public void stage(String nextActivity, long bytes) {
        if (this == NONE) {
            return;
        }
        activity = nextActivity;
        stagesDone = Math.min(stages - 1, stagesDone + 1);
        estimate = null;
        total = bytes;
        done.set(0);
    }

    /** Where the size is not known: the fraction done, from the source's own count (QEMU's RAM left to send). */
    public void estimate(DoubleSupplier fractionDone) {
        if (this == NONE) {
            return;
        }
        estimate = fractionDone;
    }

    /** {@code in}, counting what is read from it. */
    public java.io.InputStream counting(java.io.InputStream in) {
        return this == NONE ? in : new java.io.FilterInputStream(in) {
            @Override
            public int read(byte[] b, int off, int len) throws java.io.IOException {
                int n = super.read(b, off, len);
                if (n > 0) {
                    add(n);
                }
                return n;
            }
        };
    }

    public void finished(String failure) {
        if (this == NONE) {
            return;
        }
        error = failure;
        finishedAt = Instant.now();
    }

    public boolean isFinished() {
        return finishedAt != null;
    }

    public Instant finishedAt() {
        return finishedAt;
    }

    public long done() {
        return done.get();
    }

    /** Bytes in all, -1 if not known. */
    public long total() {
        return total;
    }

    /** 0..1, or NaN if neither the size nor an estimate is known. */
    public double fraction() {
        if (finishedAt != null && error == null) {
            return 1;
        }
        long all = total;
        if (all > 0) {
            return Math.min(1, (double) done.get() / all);
        }
        if (all == 0) {
            return 1;
        }
        DoubleSupplier e = estimate;
        if (e != null) {
            try {
                double f = e.getAsDouble();
                return f >= 0 && f <= 1 ? f : Double.NaN;
            } catch (RuntimeException ignored) {
                return Double.NaN; // the source went away: no estimate
            }
        }
        return Double.NaN;
    }

    /** Bytes read or written in all its stages so far. */
    public long moved() {
        return moved.get();
    }

    /** 0..1 of the whole transfer (its stages each count the same), or NaN if the current stage's part is unknown. */
    public double overall() {
        if (finishedAt != null && error == null) {
            return 1;
        }
        double f = fraction();
        return Double.isNaN(f) ? Double.NaN : (Math.max(0, stagesDone) + f) / stages;
    }

    public Instant startedAt() {
        return startedAt;
    }

    public String error() {
        return error;
    }
}
