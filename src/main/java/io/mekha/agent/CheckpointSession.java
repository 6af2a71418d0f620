package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.runtime.QemuVm;
import io.mekha.agent.time.GuestClock;
import io.mekha.agent.time.TimePolicy;
import io.mekha.agent.transfer.LiveEndingCondition;
import io.mekha.agent.transfer.MigrationStatus;
import io.mekha.agent.transfer.MtdTransfer;
import io.mekha.agent.transfer.ShadowTransfer;
import io.mekha.agent.transfer.TransferFigures;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.ScheduledFuture;

/** One checkpoint's state on one agent: a transfer per VM, with its phase and figures. */
final class CheckpointSession {

    /** One VM's part of the checkpoint. Fields are written by the agent's threads, read by status calls. */
    static final class VmTransfer {
        final QemuVm source;
        volatile ShadowTransfer transfer;
        /** Times the live stage started over because QEMU finished the migration by itself too early. */
        volatile int liveRestarts;
        volatile VmPhase phase = VmPhase.PREPARED;
        volatile LiveEndingCondition.Reason liveEnd = LiveEndingCondition.Reason.NOT_MET;
        volatile Instant liveDoneAt;
        volatile Instant guestClockAtCut;
        /** The guest clock read just before the live stage, extrapolated to the cut when the VM stops. */
        volatile GuestClock.Reading clockBeforeLive;
        /** How long QEMU kept the VM paused by finishing early during the live stage: its guest clock stood still. */
        volatile java.time.Duration pausedDuringLive = java.time.Duration.ZERO;
        volatile Instant stopIssuedAt;
        volatile Instant capturedAt;
        volatile Instant resumedAt;
        volatile TransferFigures figures;
        volatile String error;
        /** Where the shadow was streamed out to (a level or a partner), or null; QEMU streams a paused VM only once. */
        volatile String streamedTo;

        VmTransfer(QemuVm source, ShadowTransfer transfer) {
            this.source = source;
            this.transfer = transfer;
        }

        int passes() {
            return transfer instanceof MtdTransfer mtd ? mtd.condition().passes() : 0;
        }

        long bytes() {
            if (figures != null) {
                return figures.bytesTransferred();
            }
            MigrationStatus last = transfer instanceof MtdTransfer mtd ? mtd.lastStatus() : null;
            return last == null ? 0 : last.transferredBytes();
        }

        String liveEndText() {
            return transfer instanceof MtdTransfer ? liveEnd.describe() : "no live stage";
        }

        VmCheckpointStatus status() {
            return new VmCheckpointStatus(source.name(), phase, liveEndText(), passes(), liveRestarts, bytes(), liveDoneAt, stopIssuedAt,
                    capturedAt, resumedAt, figures, error, guestClockAtCut,
                    (transfer.level0() instanceof io.mekha.agent.transfer.HeldStream held ? held.complete()
                            : transfer.shadow().isAlive() && transfer.shadow().role() == QemuVm.Role.SHADOW), streamedTo != null,
                    transfer.cutDisk());
        }
    }

    final String id;
    final List<VmTransfer> vms;
    final Duration pauseDeadline;
    final TimePolicy timePolicy;
    volatile ScheduledFuture<?> poller;
    volatile ScheduledFuture<?> watchdog;
    final Object pollLock = new Object();

    CheckpointSession(String id, List<VmTransfer> vms, Duration pauseDeadline, TimePolicy timePolicy) {
        this.id = id;
        this.vms = List.copyOf(vms);
        this.pauseDeadline = pauseDeadline;
        this.timePolicy = timePolicy;
    }

    boolean all(VmPhase phase) {
        return vms.stream().allMatch(v -> v.phase == phase);
    }

    boolean any(VmPhase phase) {
        return vms.stream().anyMatch(v -> v.phase == phase);
    }

    boolean complete() {
        return all(VmPhase.RESUMED);
    }

    void cancelTimers() {
        ScheduledFuture<?> p = poller;
        if (p != null) {
            p.cancel(false);
        }
        ScheduledFuture<?> w = watchdog;
        if (w != null) {
            w.cancel(false);
        }
    }
}
