package io.mekha.agent;

import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.VmTransfer;
import io.mekha.model.TransferMode;

/** Makes a VM's level-0 copy and readies the transfer into it: over QEMU by default ({@link Level0Transfers}), simulated or faked elsewhere. */
@FunctionalInterface
public interface TransferFactory {
    VmTransfer prepare(QemuVm source, TransferMode mode, LiveStageBounds bounds) throws TransferException, InterruptedException;

    /**
     * Null when level-0 copies of all of {@code sources} fit on this node together, beside {@code promisedMiB} promised to
     * other nodes' copies that have not arrived yet, else what is missing.
     */
    default String level0Shortfall(java.util.List<QemuVm> sources, long promisedMiB) {
        return null;
    }
}
