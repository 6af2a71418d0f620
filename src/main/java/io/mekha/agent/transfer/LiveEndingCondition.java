package io.mekha.agent.transfer;

import io.mekha.agent.qemu.MigrationStatus;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The MTD local ending condition: the live stage of one VM is over once every page has been
 * sent at least once and the dirty set has stopped shrinking, or when its time bound passes.
 * This is what keeps a busy VM from an endless precopy.
 *
 * <p>Fed successive {@code query-migrate} readings. The dirty set of a pass is the largest
 * {@code remaining} seen while QEMU was in that pass (remaining only falls within a pass).
 */
public final class LiveEndingCondition {

    /** Why the live stage ended, or that it has not. */
    public enum Reason {
        NOT_MET,
        DIRTY_SET_STOPPED_SHRINKING,
        SMALL_REMAINDER,
        TIME_BOUND,
        /** The stream held in memory for level 0 reached its bound (pages sent again and again). */
        MEMORY_BOUND,
        COMPLETED_BY_QEMU;

        public String describe() {
            return switch (this) {
                case NOT_MET -> "still live";
                case DIRTY_SET_STOPPED_SHRINKING -> "dirty set stopped shrinking";
                case SMALL_REMAINDER -> "dirty set small";
                case TIME_BOUND -> "live-time bound";
                case MEMORY_BOUND -> "level-0 memory bound";
                case COMPLETED_BY_QEMU -> "QEMU completed";
            };
        }
    }

    private final LiveStageBounds bounds;
    private final List<Long> dirtySetPerPass = new ArrayList<>();
    private long currentPass = -1;
    private Reason reason = Reason.NOT_MET;

    public LiveEndingCondition(LiveStageBounds bounds) {
        this.bounds = bounds;
    }

    /** Takes one reading; returns the reason the stage ended, or NOT_MET. Once met, stays met. */
    public Reason observe(MigrationStatus status, Duration elapsed) {
        if (reason != Reason.NOT_MET) {
            return reason;
        }
        if (status.completed()) {
            return reason = Reason.COMPLETED_BY_QEMU;
        }
        long pass = status.dirtySyncCount();
        if (pass >= 2) {
            if (pass != currentPass) {
                currentPass = pass;
                dirtySetPerPass.add(status.remainingBytes());
            } else {
                int last = dirtySetPerPass.size() - 1;
                dirtySetPerPass.set(last, Math.max(dirtySetPerPass.get(last), status.remainingBytes()));
            }
            reason = judgePasses();
        }
        if (reason == Reason.NOT_MET && elapsed.compareTo(bounds.maxLive()) >= 0) {
            reason = Reason.TIME_BOUND;
        }
        return reason;
    }

    private Reason judgePasses() {
        int n = dirtySetPerPass.size();
        long latest = dirtySetPerPass.get(n - 1);
        if (latest <= bounds.smallRemainderBytes()) {
            return Reason.SMALL_REMAINDER;
        }
        // the dirty set of a pass is known at the bitmap sync that starts it (our first reading)
        if (n >= 2) {
            long previous = dirtySetPerPass.get(n - 2);
            if (latest >= bounds.shrinkFactor() * previous) {
                return Reason.DIRTY_SET_STOPPED_SHRINKING;
            }
        }
        return Reason.NOT_MET;
    }

    public Reason reason() {
        return reason;
    }

    /** Passes over memory so far (the bulk pass counts as the first). */
    public int passes() {
        return Math.max(0, (int) currentPass - 1);
    }

    public List<Long> dirtySetPerPass() {
        return List.copyOf(dirtySetPerPass);
    }
}
