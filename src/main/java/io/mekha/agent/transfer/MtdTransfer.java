package io.mekha.agent.transfer;

import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.time.Instant;

/**
 * MTD: precopy with a 1 ms downtime limit, so QEMU keeps copying but never finishes on its own,
 * until the live stage meets its ending condition; then Mekha stops the VM at the instant it
 * (or the coordinator) chose, raises the limit, and the last dirty pages flow into the shadow.
 * The limit is never 0: QEMU 7.2 then skips the dirty-bitmap sync and finishes after the bulk pass.
 *
 * <p>Stock QEMU finishes a migration by itself, stopping the VM, whenever a pass over the dirty
 * set ends with (next to) nothing newly dirty. Where QEMU offers {@code switchover-ack} (8.1+), Mekha
 * can prevent it: the switchover acknowledgement is withheld until the VM is stopped at its cut (QEMU
 * may not switch over a running VM without it), by the agent itself for a stream it holds (the
 * default there), through a {@link MigrationRelay} for a shadow ({@code MEKHA_HOLD_SWITCHOVER=1}).
 * Without that, Mekha makes it unlikely in three ways: where
 * QEMU offers {@code avail-switchover-bandwidth} (8.2+) it declares a switchover bandwidth so
 * small that only an empty dirty set fits; after the bulk pass it paces the copy so that each pass
 * lasts about {@link #PASS_TARGET} (a guest that is busy at all dirties something in that time,
 * whereas at full speed a pass over a small dirty set takes microseconds, and a guest idle for
 * those has an empty dirty set); and once the local ending condition is met it slows the copy to a
 * trickle ({@link #hold}). A guest idle for longer than a pass can still be finished by QEMU: it is
 * then paused from that instant, which keeps the cut consistent, and its figures say "QEMU completed".
 */
public final class MtdTransfer extends Level0Transfer {
    static final long LIVE_DOWNTIME_MS = 1;
    /** bytes/s: 1 ms of it is under one page, so QEMU switches over only with nothing dirty. */
    static final long HOLD_SWITCHOVER_BANDWIDTH = 1 << 20;
    /** How long a pass over the dirty set should last once the bulk pass is done. */
    static final Duration PASS_TARGET = Duration.ofMillis(250);
    /** Pacing never goes below this, so a large dirty set still converges. */
    static final long MIN_PACED_BANDWIDTH = 4L << 20;
    /** bytes/s while holding: about one page per rate-limit window of 100 ms. */
    static final long HOLD_BANDWIDTH = 48 << 10;

    private final LiveEndingCondition condition;
    private volatile MigrationStatus lastStatus;
    private volatile boolean held;
    private long pacedForPass = -1;

    MtdTransfer(QemuVm source, Level0Copy copy, LiveStageBounds bounds) {
        super(source, copy, bounds);
        this.condition = new LiveEndingCondition(bounds);
    }

    @Override
    public TransferMode mode() {
        return TransferMode.MTD;
    }

    @Override
    protected void configure() throws QmpException, TransferException {
        int major = source.qmp().greeting() == null ? 0 : source.qmp().greeting().path("version").path("qemu").path("major").asInt(0);
        if (major > 0 && major < 8 && source.accelerator() == io.mekha.agent.qemu.Accelerator.TCG) {
            // measured here: on QEMU 7.2 under TCG, a VM stopped in the middle of a precopy restored
            // with corrupt memory (its kernel oopsed), every time; StopAndCopy and BackgroundSnapshot were exact
            throw new TransferException("VM '" + source.name() + "': MTD needs QEMU 8 or later under TCG (this is QEMU " + major
                    + "): on QEMU 7.2 a VM stopped during its precopy restores with corrupt memory; use StopAndCopy or"
                    + " BackgroundSnapshot, or install QEMU 10 (scripts/install-deps.sh takes it from bookworm-backports)");
        }
        super.configure();
        setParameter("downtime-limit", LIVE_DOWNTIME_MS);
        setParameterIfOffered("avail-switchover-bandwidth", HOLD_SWITCHOVER_BANDWIDTH);
    }

    @Override
    public void startLive() throws QmpException {
        super.startLive();
        migrate();
    }

    @Override
    public LiveEndingCondition.Reason pollLive() throws QmpException, TransferException {
        MigrationStatus status = status(source);
        lastStatus = status;
        if (status.failed()) {
            throw new TransferException("VM '" + source.name() + "': live transfer to " + copy.describe() + " " + status.status()
                    + (status.errorDescription() == null ? "" : ": " + status.errorDescription()));
        }
        if (status.completed()) {
            // QEMU finished by itself and paused the VM, even after the condition was met (held)
            return LiveEndingCondition.Reason.COMPLETED_BY_QEMU;
        }
        if (copy instanceof HeldStream held && held.boundReached()) {
            return LiveEndingCondition.Reason.MEMORY_BOUND;
        }
        LiveEndingCondition.Reason reason = condition.observe(status, Duration.between(liveStarted, Instant.now()));
        if (reason == LiveEndingCondition.Reason.NOT_MET) {
            pace(status);
        }
        return reason;
    }

    /** At each new pass after the bulk pass, sets the bandwidth that makes the pass last about PASS_TARGET. */
    private void pace(MigrationStatus status) throws QmpException {
        if (held || status.dirtySyncCount() < 2 || status.dirtySyncCount() == pacedForPass) {
            return;
        }
        pacedForPass = status.dirtySyncCount();
        long perSecond = status.remainingBytes() * 1000 / PASS_TARGET.toMillis();
        long paced = Math.max(MIN_PACED_BANDWIDTH, perSecond);
        setParameter("max-bandwidth", Math.min(paced, bounds.qemuMaxBandwidth(UNCAPPED_BANDWIDTH)));
    }

    @Override
    public void holdLive() throws QmpException {
        hold();
    }

    @Override
    public int passes() {
        return condition.passes();
    }

    @Override
    public long bytesSoFar() {
        MigrationStatus last = lastStatus;
        return last == null ? 0 : last.transferredBytes();
    }

    /** The last query-migrate reading of the live stage (null before the first poll). */
    public MigrationStatus lastStatus() {
        return lastStatus;
    }

    public LiveEndingCondition condition() {
        return condition;
    }

    /**
     * Keeps a VM that met its local ending condition live while the others catch up (the global
     * ending condition), without letting QEMU finish by itself: copying slows to a trickle, so a
     * pass over the small dirty set lasts seconds, and a running guest always dirties something in
     * that time. At full speed a pass takes milliseconds, and a guest idle for those milliseconds
     * has an empty dirty set, which QEMU takes as the moment to stop the VM and finish.
     */
    public void hold() throws QmpException {
        if (!held) {
            setParameter("max-bandwidth", HOLD_BANDWIDTH);
            held = true;
        }
    }

    @Override
    public void suspend() throws QmpException {
        stopSource();
        releaseSwitchover();
        setParameter("max-bandwidth", bounds.qemuMaxBandwidth(UNCAPPED_BANDWIDTH));
        setParameter("downtime-limit", FINAL_DOWNTIME_MS);
        setParameterIfOffered("avail-switchover-bandwidth", 0);
    }
}
