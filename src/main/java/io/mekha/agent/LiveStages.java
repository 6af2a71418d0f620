package io.mekha.agent;

import io.mekha.agent.api.VmPhase;
import io.mekha.agent.transfer.LiveEndingCondition;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.VmTransfer;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.time.Instant;
import org.jboss.logging.Logger;

/**
 * Watches the live stage of a checkpoint's VMs: each VM's local ending condition, and a live stage
 * that QEMU finished by itself (pausing the VM long before Ts), which starts over at once.
 */
final class LiveStages {
    private static final Logger LOG = Logger.getLogger(LiveStages.class);
    static final Duration POLL = Duration.ofMillis(20);
    /** After this many, a VM that QEMU finishes early stays paused until Tr (still a consistent cut). */
    static final int MAX_LIVE_RESTARTS = 5;

    private final TransferFactory transfers;
    private final RendezvousClock clock;

    LiveStages(TransferFactory transfers, RendezvousClock clock) {
        this.transfers = transfers;
        this.clock = clock;
    }

    /** One look at every VM still in its live stage. */
    void poll(CheckpointSession session) {
        synchronized (session.stepLock) {
            for (SessionVm v : session.vms) {
                if (v.phase() != VmPhase.LIVE && v.phase() != VmPhase.LIVE_DONE) {
                    continue;
                }
                try {
                    LiveEndingCondition.Reason reason = v.transfer.pollLive();
                    if (reason == LiveEndingCondition.Reason.COMPLETED_BY_QEMU && v.liveRestarts < MAX_LIVE_RESTARTS) {
                        startOver(session, v);
                        continue;
                    }
                    if (reason != LiveEndingCondition.Reason.NOT_MET && v.phase() == VmPhase.LIVE) {
                        v.liveEnd = reason;
                        if (reason != LiveEndingCondition.Reason.COMPLETED_BY_QEMU) {
                            v.transfer.holdLive();
                        }
                        v.liveDoneAt = clock.now();
                        v.moveTo(VmPhase.LIVE_DONE);
                    }
                } catch (QmpException | TransferException | RuntimeException e) {
                    Duration grace = Duration.ofSeconds(1);
                    String why = v.source.exitedWithin(grace) ? "its QEMU (pid " + v.source.pid() + ") exited during the live stage"
                            : v.transfer.level0().lost() ? v.transfer.level0().describe() + " broke during the live stage (" + e.getMessage() + ")"
                            : "live stage failed: " + e.getMessage();
                    CheckpointSessions.fail(v, why, "this node");
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /**
     * QEMU finished the migration by itself (a pass found nothing dirty) and so paused the VM long
     * before Ts. Rather than keep it paused while the other VMs finish their live stage, resume it
     * at once and start its live stage over with a fresh level-0 copy.
     */
    private void startOver(CheckpointSession session, SessionVm v) throws TransferException, QmpException, InterruptedException {
        v.liveRestarts++;
        LOG.infof("checkpoint %s: QEMU finished VM '%s' early (idle guest); resuming it and restarting its live stage (%d)",
                session.id, v.name(), v.liveRestarts);
        VmTransfer old = v.transfer;
        Instant stoppedAt = old.stoppedByQemuAt();
        old.abort();
        if (stoppedAt != null) {
            v.pausedDuringLive = v.pausedDuringLive.plus(Duration.between(stoppedAt, clock.now()));
        }
        VmTransfer fresh = transfers.prepare(v.source, old.mode(), old.bounds());
        v.transfer = fresh;
        v.liveEnd = LiveEndingCondition.Reason.NOT_MET;
        v.liveDoneAt = null;
        v.moveTo(VmPhase.LIVE);
        fresh.startLive();
    }
}
