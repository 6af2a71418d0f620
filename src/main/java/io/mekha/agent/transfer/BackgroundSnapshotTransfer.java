package io.mekha.agent.transfer;

import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpException;
import java.time.Instant;

/**
 * QEMU's background snapshot: QEMU pauses the VM for about a millisecond to save device state
 * and write-protect guest memory, resumes it, and copies each page before the guest first
 * writes it, so the shadow receives memory as it was at the start. Needs QEMU's
 * {@code background-snapshot} capability (and userfaultfd write-protection in the host kernel).
 */
public final class BackgroundSnapshotTransfer extends Level0Transfer {

    BackgroundSnapshotTransfer(QemuVm source, Level0Copy copy, LiveStageBounds bounds) {
        super(source, copy, bounds);
    }

    @Override
    public TransferMode mode() {
        return TransferMode.BACKGROUND_SNAPSHOT;
    }

    @Override
    protected void configure() throws QmpException, TransferException {
        setParameter("max-bandwidth", bounds.qemuMaxBandwidth(UNCAPPED_BANDWIDTH));
        setCapability("background-snapshot", true, true);
    }

    /** QEMU pauses the VM itself for the snapshot's start: Mekha does not stop it. */
    @Override
    public void stop() {
        stopIssued = Instant.now();
    }

    @Override
    public void completeSuspend() throws QmpException {
        suspended = Instant.now();
        migrate();
    }
}
