package io.mekha.agent;

import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.agent.transfer.Level0Transfer;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.VmTransfer;
import io.mekha.model.TransferMode;

/** Transfers over QEMU into the level-0 copy the runtime makes: a shadow QEMU (local), a held stream (KubeVirt). */
final class Level0Transfers implements TransferFactory {
    private final VmRuntime runtime;

    Level0Transfers(VmRuntime runtime) {
        this.runtime = runtime;
    }

    @Override
    public VmTransfer prepare(QemuVm source, TransferMode mode, LiveStageBounds bounds) throws TransferException, InterruptedException {
        Level0Copy copy;
        try {
            copy = runtime.level0(source);
        } catch (VmStartException e) {
            throw new TransferException(e.getMessage(), e);
        }
        return Level0Transfer.prepare(mode, source, copy, bounds);
    }

    @Override
    public String level0Shortfall(java.util.List<QemuVm> sources, long promisedMiB) {
        return runtime.level0Shortfall(sources, promisedMiB);
    }
}
