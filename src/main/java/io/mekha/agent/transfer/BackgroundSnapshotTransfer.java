package io.mekha.agent.transfer;

import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpException;
import java.time.Instant;

/**
 * A coordinated background snapshot: Mekha stops the VM at Ts like every other VM of the VC, then starts QEMU's
 * background snapshot on the stopped VM. QEMU saves the device state and write-protects guest RAM (userfaultfd) and, the
 * VM having been paused, keeps it paused; once that is done ({@link SnapshotArmed}) the VM is captured, and Mekha lets
 * it run again at Tr, after every VM of the VC is captured. QEMU then copies each page before the guest first writes
 * it, so the level-0 copy receives RAM as it was at the cut while the VC runs; the VM's checkpoint is complete once the
 * stream is ({@link #awaitStreamed}). Needs QEMU's {@code background-snapshot} capability (and userfaultfd
 * write-protection in the host kernel), and a QEMU that keeps a paused VM paused (9.0 or later).
 */
public final class BackgroundSnapshotTransfer extends Level0Transfer {
    /** A copy after the resume that moves no byte (or whose QEMU gives no answer) this long has stalled. */
    static final java.time.Duration STALL_LIMIT = java.time.Duration.ofSeconds(5);
    private MigrationStatus armed;

    BackgroundSnapshotTransfer(QemuVm source, Level0Copy copy, LiveStageBounds bounds) {
        super(source, copy, bounds);
    }

    @Override
    public TransferMode mode() {
        return TransferMode.BACKGROUND_SNAPSHOT;
    }

    @Override
    protected void configure() throws QmpException, TransferException {
        super.configure();
        try {
            setCapability("background-snapshot", true, true);
        } catch (QmpException e) {
            throw new TransferException("VM '" + source.name() + "': QEMU cannot take a background snapshot here: " + e.getMessage()
                    + " (it write-protects guest memory with userfaultfd: the host kernel needs userfaultfd write-protection, 5.7 or"
                    + " later, and QEMU must be allowed userfaultfd — vm.unprivileged_userfaultfd=1, or CAP_SYS_PTRACE for its"
                    + " process, and a seccomp profile that lets the syscall through); use MTD or StopAndCopy", e);
        }
    }

    @Override
    public void stop() throws QmpException {
        sendStop();
    }

    /** The VM stopped at the cut: its snapshot starts, the VM paused. */
    @Override
    public void completeSuspend() throws QmpException {
        awaitStop();
        migrate();
    }

    /** Captured once QEMU saved the devices and armed write tracking; the RAM follows after the resume. */
    @Override
    public void awaitCaptured() throws TransferException, InterruptedException {
        try {
            armed = SnapshotArmed.await(source.name(), new SnapshotArmed.Qemu() {
                @Override
                public MigrationStatus migration() throws QmpException {
                    // bounded: a device state stuck behind a full stream can hold QEMU's monitor (then: lost, aborted)
                    return MigrationStatus.parse(source.qmp().execute("query-migrate", null, STALL_LIMIT));
                }

                @Override
                public String runState() throws QmpException {
                    return source.qmp().execute("query-status").path("status").asText();
                }
            }, bounds.completionTimeout());
            capturedNow();
        } catch (QmpException e) {
            throw new TransferException("VM '" + source.name() + "': lost QEMU while its background snapshot started: " + e.getMessage(), e);
        }
    }

    @Override
    public boolean streamsAfterResume() {
        return true;
    }

    /**
     * After the resume: waits until the level-0 copy holds all of RAM as it was at the cut. A guest write to a page not yet
     * copied waits for that page, so a copy that stalls stalls the guest: it fails after {@link #STALL_LIMIT} without
     * progress (or within the completion timeout), and the abort breaks the stream first.
     */
    @Override
    public void awaitStreamed() throws TransferException, InterruptedException {
        awaitMigrated(STALL_LIMIT);
        streamed = Instant.now();
    }

    /**
     * The copy is dropped first: a stream stuck on its way to it can hold QEMU's main loop (its monitor does not answer,
     * guest writes wait), and breaking the stream frees it; then the migration is cancelled and a VM Mekha stopped is
     * resumed, as for every mode. Nothing in a background snapshot's copy is kept by an abort.
     */
    @Override
    public void abort() {
        copy.discard();
        super.abort();
    }

    /** The reading that showed the cut taken (the first RAM pages saved), or null before it. */
    public MigrationStatus armedStatus() {
        return armed;
    }
}
