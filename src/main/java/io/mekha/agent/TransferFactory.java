package io.mekha.agent;

import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.VmTransfer;
import io.mekha.model.TransferMode;

/** Makes a VM's level-0 copy and readies the transfer into it; the agent's is {@link Level0Transfers}, tests bring fakes. */
@FunctionalInterface
interface TransferFactory {
    VmTransfer prepare(QemuVm source, TransferMode mode, LiveStageBounds bounds) throws TransferException, InterruptedException;
}
