package io.mekha.agent.shadow;

import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.runtime.QemuVm;
import io.mekha.agent.runtime.VmStartException;
import io.mekha.agent.transfer.LiveEndingCondition;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.agent.transfer.MtdTransfer;
import io.mekha.agent.transfer.ShadowTransfer;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.TransferFigures;
import io.mekha.agent.transfer.TransferMode;
import io.mekha.qmp.QmpException;
import java.time.Duration;

/**
 * Checkpoints one running VM into an in-memory shadow, start to finish, on this host: the
 * single-VM protocol (the coordinator runs the same phases over many VMs). The VM runs on
 * afterwards; on any failure the shadow is removed and the VM left running.
 */
public final class ShadowCheckpointer {
    /** Room a QEMU process needs beyond guest RAM (code, TCG translation cache, device state). */
    static final long QEMU_OVERHEAD_MIB = 192;
    private static final Duration POLL = Duration.ofMillis(20);

    private final io.mekha.agent.runtime.VmRuntime runtime;

    public ShadowCheckpointer(io.mekha.agent.runtime.VmRuntime runtime) {
        this.runtime = runtime;
    }

    /**
     * The memory bound: null when this host can hold a paused copy of a VM of {@code memoryMiB} (guest RAM plus QEMU's
     * own), else what is missing. Shadows and partner copies both answer to it.
     */
    public static String memoryShortfall(long memoryMiB) {
        long need = memoryMiB + QEMU_OVERHEAD_MIB;
        long available = HostMemory.availableMiB();
        return need > available ? "a copy in memory needs " + need + " MiB of host memory but only " + available + " MiB is available"
                : null;
    }

    /** Makes the level-0 copy for {@code source} (a shadow, after checking the memory bound) and prepares the transfer. */
    public ShadowTransfer prepare(QemuVm source, TransferMode mode, LiveStageBounds bounds)
            throws TransferException, InterruptedException {
        io.mekha.agent.transfer.Level0Copy copy;
        try {
            copy = runtime.level0(source);
        } catch (VmStartException e) {
            throw new TransferException(e.getMessage(), e);
        }
        return ShadowTransfer.prepare(mode, source, copy, bounds);
    }

    /** The whole single-VM checkpoint: prepare, live stage, stop now, capture, resume. */
    public ShadowCheckpoint checkpoint(QemuVm source, TransferMode mode, LiveStageBounds bounds)
            throws TransferException, InterruptedException {
        ShadowTransfer transfer = prepare(source, mode, bounds);
        try {
            transfer.startLive();
            LiveEndingCondition.Reason reason;
            while ((reason = transfer.pollLive()) == LiveEndingCondition.Reason.NOT_MET) {
                Thread.sleep(POLL.toMillis());
            }
            transfer.suspend();
            transfer.awaitCaptured();
            transfer.resumeSource();
            int passes = transfer instanceof MtdTransfer mtd ? mtd.condition().passes() : 0;
            TransferFigures figures = transfer.figures(mode == TransferMode.MTD ? reason.describe() : "no live stage", passes);
            return new ShadowCheckpoint(source, transfer.shadow(), figures, transfer.cutInstant());
        } catch (QmpException e) {
            transfer.abort();
            throw new TransferException("VM '" + source.name() + "': checkpoint aborted, VM left running: " + e.getMessage(), e);
        } catch (TransferException | InterruptedException | RuntimeException e) {
            transfer.abort();
            throw e;
        }
    }
}
