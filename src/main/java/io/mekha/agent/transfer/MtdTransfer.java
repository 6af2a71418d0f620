package io.mekha.agent.transfer;

import io.mekha.agent.runtime.QemuVm;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.time.Instant;

/**
 * MTD: precopy with a 1 ms downtime limit, so QEMU keeps copying but never finishes on its own,
 * until the live stage meets its ending condition; then Mekha stops the VM at the instant it
 * (or the coordinator) chose, raises the limit, and the last dirty pages flow into the shadow.
 * The limit is never 0: QEMU 7.2 then skips the dirty-bitmap sync and finishes after the bulk pass.
 *
 * <p>QEMU still completes by itself when a pass leaves less than "bandwidth x 1 ms" dirty, which a
 * guest that idles between bursts does. Where QEMU offers {@code avail-switchover-bandwidth}
 * (8.2+), Mekha declares a switchover bandwidth so small that only an empty dirty set would fit,
 * which a running guest never has. On older QEMU a self-completion can still happen: the VM is
 * then paused from that instant (still a consistent cut) and the figures say "QEMU completed".
 */
public final class MtdTransfer extends ShadowTransfer {
    static final long LIVE_DOWNTIME_MS = 1;
    /** bytes/s: 1 ms of it is under one page, so QEMU switches over only with nothing dirty. */
    static final long HOLD_SWITCHOVER_BANDWIDTH = 1 << 20;

    private final LiveEndingCondition condition;

    MtdTransfer(QemuVm source, QemuVm shadow, LiveStageBounds bounds) {
        super(source, shadow, bounds);
        this.condition = new LiveEndingCondition(bounds);
    }

    @Override
    public TransferMode mode() {
        return TransferMode.MTD;
    }

    @Override
    protected void configure() throws QmpException, TransferException {
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
        if (status.failed()) {
            throw new TransferException("VM '" + source.name() + "': live transfer to the shadow " + status.status()
                    + (status.errorDescription() == null ? "" : ": " + status.errorDescription()));
        }
        return condition.observe(status, Duration.between(liveStarted, Instant.now()));
    }

    public LiveEndingCondition condition() {
        return condition;
    }

    @Override
    public void suspend() throws QmpException {
        stopIssued = Instant.now();
        source.qmp().execute("stop");
        pausedByMekha = true;
        suspended = Instant.now();
        setParameter("downtime-limit", FINAL_DOWNTIME_MS);
        setParameterIfOffered("avail-switchover-bandwidth", 0);
    }
}
