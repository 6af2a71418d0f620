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
}
