package io.mekha.agent.transfer;

import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.qmp.QmpException;
import java.time.Duration;

/**
 * When a background snapshot of a paused VM has taken its cut, so that the VM may run again: QEMU saved the device state
 * and write-protected guest RAM. QEMU says neither (a paused VM sends no STOP or RESUME, and its migration turns "active"
 * before the device state is saved), but its background-snapshot thread puts RAM pages into the stream only after both:
 * it stops the VM, saves the devices into a buffer, arms write tracking, queues the start of the VM (which, on a VM that
 * was paused, keeps it paused) and only then iterates over RAM. So the first saved page (QEMU's normal + duplicate
 * counts moving), or a completed migration, is the signal; a failed one is the answer too. Then one more monitor round
 * (the start QEMU queued has run by the time the monitor answers) must find the VM still paused.
 */
public final class SnapshotArmed {
    private static final Duration POLL = Duration.ofMillis(2);

    /** What the gate reads from the VM's QEMU. */
    public interface Qemu {
        MigrationStatus migration() throws QmpException;

        /** QEMU's run state ("paused", "running", ...). */
        String runState() throws QmpException;
    }

    private SnapshotArmed() {}

    /**
     * Waits until the snapshot's cut is taken; returns the reading that said so. Fails, with the reason, when the snapshot
     * failed, took longer than {@code limit}, or when QEMU resumed the VM itself (QEMU before 9.0 starts the VM after the
     * snapshot's start whatever its state was: then the VMs of a VC cannot be cut together).
     */
    public static MigrationStatus await(String vm, Qemu qemu, Duration limit) throws TransferException, QmpException, InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        MigrationStatus status;
        while (true) {
            status = qemu.migration();
            if (status.failed()) {
                throw new TransferException("VM '" + vm + "': its background snapshot " + status.status()
                        + (status.errorDescription() == null ? "" : ": " + status.errorDescription()));
            }
            if (status.completed() || status.pagesSaved() > 0) {
                break;
            }
            if (System.nanoTime() > deadline) {
                throw new TransferException("VM '" + vm + "': its background snapshot did not save the device state within " + limit
                        + " (QEMU's migration is " + status.status() + ", no RAM page saved yet); the VM stays paused until the"
                        + " checkpoint is aborted");
            }
            Thread.sleep(POLL.toMillis());
        }
        String run = qemu.runState();
        if (!run.equals("paused")) {
            throw new TransferException("VM '" + vm + "': QEMU set it " + run + " by itself as its background snapshot started, so the"
                    + " VMs of a VC cannot be cut together: coordinated BackgroundSnapshot needs QEMU 9.0 or later (one that keeps a"
                    + " paused VM paused); use MTD or StopAndCopy");
        }
        return status;
    }
}
