package io.mekha.agent.transfer;

import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.time.Instant;

/**
 * MTD: precopy with a 1 ms downtime limit, so QEMU keeps copying but never finishes on its own,
 * until the live stage meets its ending condition; then Mekha stops the VM at the instant it
 * (or the coordinator) chose, raises the limit, and the last dirty pages flow into the copy.
 * The limit is never 0: QEMU 7.2 then skips the dirty-bitmap sync and finishes after the bulk pass.
 *
 * <p>Stock QEMU finishes a migration by itself, stopping the VM, whenever a pass over the dirty
 * set ends with (next to) nothing newly dirty. Where QEMU offers {@code switchover-ack} (8.1+) the
 * switchover is held until the stop at Ts ({@link SwitchoverHold}), on every path: QEMU cannot
 * finish early at all, and the live stage keeps the dirty set small right up to Ts (passes of
 * {@link #HELD_PASS_TARGET}); only a guest with nothing to send is slowed to {@link #IDLE_HELD_BANDWIDTH},
 * which bounds how often QEMU's migration thread re-syncs an empty dirty bitmap while it waits.
 * A held stream is itself bounded in memory, so once its live stage ends it too is slowed to a
 * trickle. Without the hold (older QEMU, {@code MEKHA_HOLD_SWITCHOVER=0}) Mekha makes an early
 * finish unlikely in three ways: a switchover bandwidth so small that only an empty dirty set fits
 * ({@code avail-switchover-bandwidth}, QEMU 8.2+), passes paced to about {@link #PASS_TARGET} (a
 * busy guest dirties something in that time), and a trickle once the local ending condition is met;
 * a guest idle for longer is then paused from that instant, and its live stage starts over.
 */
public final class MtdTransfer extends Level0Transfer {
    static final long LIVE_DOWNTIME_MS = 1;
    /** bytes/s: 1 ms of it is under one page, so QEMU switches over only with nothing dirty. */
    static final long HOLD_SWITCHOVER_BANDWIDTH = 1 << 20;
    /** How long a pass over the dirty set should last once the bulk pass is done (switchover not held). */
    static final Duration PASS_TARGET = Duration.ofMillis(250);
    /** With the switchover held, passes are short: the dirty set at Ts is what the guest dirtied in about this long. */
    static final Duration HELD_PASS_TARGET = Duration.ofMillis(50);
    /** Pacing never goes below this, so a large dirty set still converges. */
    static final long MIN_PACED_BANDWIDTH = 4L << 20;
    /** bytes/s while holding: about one page per rate-limit window of 100 ms. */
    static final long HOLD_BANDWIDTH = 48 << 10;
    /**
     * bytes/s for a held guest with nothing dirty. Held, QEMU's migration thread re-syncs the dirty bitmap (under the big
     * QEMU lock) on every pass it makes while nothing is left to send, and each pass costs it ~18 bytes of the stream:
     * the bandwidth cap is what makes it sleep between passes. At 2 KiB/s that is ~110 passes a second; at 48 KiB/s,
     * ~2,700, and a {@code stop} then waited ~30 ms for the lock (measured here, idle guests under TCG).
     */
    static final long IDLE_HELD_BANDWIDTH = 2 << 10;

    private final LiveEndingCondition condition;
    private volatile QmpClient.Reply finalPassReply;
    private volatile QmpClient.Prepared preparedFinalPass;
    private boolean switchoverBandwidthOffered;
    private volatile MigrationStatus lastStatus;
    private volatile boolean held;
    private long pacedForPass = -1;
    private long lastPaced = -1;

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
        switchoverBandwidthOffered = setParameterIfOffered("avail-switchover-bandwidth", HOLD_SWITCHOVER_BANDWIDTH);
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

    /**
     * At each new pass after the bulk pass, sets the bandwidth that makes the pass last about its target: with the
     * switchover held, {@link #HELD_PASS_TARGET} and, for a guest with nothing dirty, {@link #IDLE_HELD_BANDWIDTH}; without,
     * {@link #PASS_TARGET}, never below {@link #MIN_PACED_BANDWIDTH}.
     */
    private void pace(MigrationStatus status) throws QmpException {
        if (held || status.dirtySyncCount() < 2 || status.dirtySyncCount() == pacedForPass) {
            return;
        }
        pacedForPass = status.dirtySyncCount();
        long paced;
        if (switchoverHeld()) {
            paced = Math.max(IDLE_HELD_BANDWIDTH, status.remainingBytes() * 1000 / HELD_PASS_TARGET.toMillis());
        } else {
            paced = Math.max(MIN_PACED_BANDWIDTH, status.remainingBytes() * 1000 / PASS_TARGET.toMillis());
        }
        paced = Math.min(paced, bounds.qemuMaxBandwidth(UNCAPPED_BANDWIDTH));
        // set only on a real change: an idle guest's passes come by the thousand per second while held
        if (paced < lastPaced / 2 || paced > lastPaced * 2) {
            setParameter("max-bandwidth", paced);
            lastPaced = paced;
        }
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
     * ending condition). With the switchover held into a shadow nothing changes: the short passes
     * go on, so the dirty set stays small until Ts. A held stream would grow with every page sent
     * again, so it slows to a trickle. Without the hold the copy slows to a trickle too, so that a
     * pass over the small dirty set lasts seconds and a running guest always dirties something in
     * that time: at full speed a pass takes milliseconds, and a guest idle for those milliseconds has
     * an empty dirty set, which QEMU takes as the moment to stop the VM and finish.
     */
    public void hold() throws QmpException {
        if (held || (switchoverHeld() && !(copy instanceof io.mekha.agent.level0.HeldStream))) {
            return;
        }
        setParameter("max-bandwidth", HOLD_BANDWIDTH);
        held = true;
    }

    /**
     * The cut: {@code stop}, and right behind it (QEMU takes them in order) the parameters that let the final pass
     * go as fast as it can; neither waits for the other's reply.
     */
    @Override
    public void prepareStop() throws QmpException {
        super.prepareStop();
        preparedFinalPass = source.qmp().prepare("migrate-set-parameters", QmpClient.args()
                .put("max-bandwidth", bounds.qemuMaxBandwidth(UNCAPPED_BANDWIDTH)).put("downtime-limit", FINAL_DOWNTIME_MS));
    }

    @Override
    public void stop() throws QmpException {
        sendStop();
        QmpClient.Prepared prepared = preparedFinalPass;
        preparedFinalPass = null;
        finalPassReply = prepared != null ? prepared.send() : source.qmp().submit("migrate-set-parameters", QmpClient.args()
                .put("max-bandwidth", bounds.qemuMaxBandwidth(UNCAPPED_BANDWIDTH)).put("downtime-limit", FINAL_DOWNTIME_MS));
    }

    @Override
    public void completeSuspend() throws QmpException {
        awaitStop();
        if (finalPassReply != null) {
            finalPassReply.await(java.time.Duration.ofSeconds(30));
            finalPassReply = null;
        }
        if (hold != null) {
            hold.release(); // a stopped VM may switch over; with the return path, QEMU waits for the copy's word
        }
        if (switchoverBandwidthOffered) {
            setParameter("avail-switchover-bandwidth", 0);
        }
    }
}
