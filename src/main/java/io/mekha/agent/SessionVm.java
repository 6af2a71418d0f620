package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.time.GuestClock;
import io.mekha.agent.transfer.LiveEndingCondition;
import io.mekha.agent.transfer.VmTransfer;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * One VM's part in a checkpoint on this node: its transfer, its figures, and its phase, which
 * moves only through {@link #moveTo} (the table in {@link VmPhase}): a terminal phase is never left,
 * so a capture that fails because an abort cancelled it stays ABORTED.
 */
final class SessionVm extends Level0Holding {
    private static final Logger LOG = Logger.getLogger(SessionVm.class);

    /** The checkpoint this VM is part of. */
    final String checkpoint;
    final QemuVm source;
    private final SessionChanges changes;
    private VmPhase phase = VmPhase.PREPARED;
    private final List<VmPhase> history = new ArrayList<>(List.of(VmPhase.PREPARED));
    private String error;
    /** What the resume guard last said about a VM it is getting running again (null when it never had to). */
    private volatile String resumeNote;
    volatile VmTransfer transfer;
    /** Times the live stage started over because QEMU finished the migration by itself too early. */
    volatile int liveRestarts;
    volatile LiveEndingCondition.Reason liveEnd = LiveEndingCondition.Reason.NOT_MET;
    volatile Instant liveDoneAt;
    volatile Instant guestClockAtCut;
    /** The guest clock read just before the live stage, extrapolated to the cut when the VM stops. */
    volatile GuestClock.Reading clockBeforeLive;
    /** How long QEMU kept the VM paused by finishing early during the live stage: its guest clock stood still. */
    volatile Duration pausedDuringLive = Duration.ZERO;
    volatile Instant stopIssuedAt;
    /**
     * When the guest's clock froze at the cut: QEMU's run-state trace where there is one, else {@link #stopIssuedAt}. Set
     * at the capture, with {@link #stopLate}, before anything restarts or replicates the VM.
     */
    volatile Instant frozenAt;
    /** How long after Ts the guest stopped: its resume comes that much after Tr, so that every VM pauses Tr - Ts. */
    volatile Duration stopLate = Duration.ZERO;
    volatile Instant capturedAt;
    volatile Instant resumedAt;
    volatile TransferFigures figures;

    SessionVm(String checkpoint, QemuVm source, VmTransfer transfer, SessionChanges changes) {
        this.checkpoint = checkpoint;
        this.source = source;
        this.transfer = transfer;
        this.changes = changes;
    }

    String name() {
        return source.name();
    }

    synchronized VmPhase phase() {
        return phase;
    }

    synchronized String error() {
        return error;
    }

    /** Every phase this VM was in, in order. */
    synchronized List<VmPhase> history() {
        return List.copyOf(history);
    }

    /**
     * Moves to {@code next}; false when the VM is already in a terminal phase (a late event lost a race with an abort
     * or a failure, and changes nothing). A move the table forbids from a live phase is a bug: it throws.
     */
    boolean moveTo(VmPhase next) {
        return move(next, null);
    }

    /** Ends in {@code terminal} (FAILED, ABORTED) with {@code why}; false when already terminal (the first error stays). */
    boolean end(VmPhase terminal, String why) {
        if (!terminal.terminal()) {
            throw new IllegalArgumentException(terminal + " is not a terminal phase");
        }
        return move(terminal, why);
    }

    private boolean move(VmPhase next, String why) {
        synchronized (this) {
            if (phase.terminal()) {
                LOG.debugf("VM '%s': stays %s (refused move to %s%s)", name(), phase, next, why == null ? "" : ": " + why);
                return false;
            }
            if (!phase.canMoveTo(next)) {
                throw new IllegalStateException("VM '" + name() + "': no move from " + phase + " to " + next);
            }
            phase = next;
            history.add(next);
            if (why != null) {
                error = why;
            }
        }
        changes.bump();
        return true;
    }

    /** The resume guard's latest word on this VM (still paused and why, or resumed): shown with its error. */
    void noteResume(String note) {
        resumeNote = note;
        changes.bump();
    }

    String liveEndText() {
        return transfer.mode() == TransferMode.MTD ? liveEnd.describe() : "no live stage";
    }

    VmCheckpointStatus status() {
        VmPhase now;
        String why;
        synchronized (this) {
            now = phase;
            why = error;
        }
        String note = resumeNote;
        if (note != null) {
            why = why == null ? note : why + "; " + note;
        }
        VmTransfer t = transfer;
        TransferFigures f = figures;
        return new VmCheckpointStatus(name(), now, liveEndText(), t.passes(), liveRestarts, f != null ? f.bytesTransferred() : t.bytesSoFar(),
                liveDoneAt, stopIssuedAt, capturedAt, resumedAt, f, why, guestClockAtCut, t.level0().held(), streamedTo() != null,
                t.cutDisk(), stopLate, frozenAt);
    }

    // ---------------------------------------------------------------- as a level-0 holding, once complete

    /** Where the checkpoint's level-0 copy of this VM went: a shadow QEMU or a held stream. */
    Level0Copy copy() {
        return transfer.level0();
    }

    @Override
    io.mekha.agent.level0.HeldState heldState() {
        return transfer.level0() instanceof HeldStream held ? held : null;
    }

    @Override
    QemuVm shadow() {
        return transfer.level0() instanceof io.mekha.agent.level0.ShadowCopy s ? s.qemu() : null;
    }

    @Override
    boolean holds() {
        return transfer.level0() != null && transfer.level0().held();
    }

    @Override
    public VmSpec spec() {
        return source.spec();
    }

    @Override
    public Accelerator accelerator() {
        return source.accelerator();
    }

    @Override
    public Path cutDisk() {
        return transfer.level0() instanceof HeldStream held ? held.disk() : transfer.cutDisk();
    }



}
