package io.mekha.agent.transfer;

import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpException;

/** The classic baseline: stop the VM, copy all of its state, let it run again. */
public final class StopAndCopyTransfer extends Level0Transfer {

    StopAndCopyTransfer(QemuVm source, Level0Copy copy, LiveStageBounds bounds) {
        super(source, copy, bounds);
    }

    @Override
    public TransferMode mode() {
        return TransferMode.STOP_AND_COPY;
    }

    @Override
    protected void configure() throws QmpException, TransferException {
        super.configure();
        setParameter("downtime-limit", FINAL_DOWNTIME_MS);
    }

    @Override
    public void stop() throws QmpException {
        sendStop();
    }

    /** The whole state goes now, the VM paused. */
    @Override
    public void completeSuspend() throws QmpException {
        awaitStop();
        migrate();
    }
}
