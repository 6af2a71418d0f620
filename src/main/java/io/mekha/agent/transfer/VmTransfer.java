package io.mekha.agent.transfer;

import io.mekha.agent.level0.Level0Copy;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpException;
import java.nio.file.Path;
import java.time.Instant;

/**
 * What a checkpoint session drives for one VM, in the protocol's order: {@link #startLive},
 * {@link #pollLive} until the local ending condition, {@link #stop} at Ts (the cut) and
 * {@link #completeSuspend}, {@link #awaitCaptured}, {@link #sendResume} at Tr and
 * {@link #completeResume}; {@link #abort} undoes whatever was done. The stop and the resume are
 * sent without waiting for QEMU's reply, so that one thread can cut every VM of a node at one instant.
 * {@link Level0Transfer} is the one over QEMU; tests drive sessions with fakes of their own.
 */
public interface VmTransfer {

    TransferMode mode();

    LiveStageBounds bounds();

    /** Where the VM's state goes: a shadow QEMU or a stream held in memory. */
    Level0Copy level0();

    /** Begins copying while the VM runs; modes without a live stage do nothing. */
    void startLive() throws QmpException;

    /** One look at the live stage: the reason it may end now, or NOT_MET. */
    LiveEndingCondition.Reason pollLive() throws QmpException, TransferException;

    /** The local ending condition is met: keep the live stage going slowly, without letting QEMU finish it. */
    default void holdLive() throws QmpException {
    }

    /** Before Ts: readies the stop (encodes its commands), so that at Ts it only has to be sent. */
    default void prepareStop() throws QmpException {
    }

    /** Sends the stop that freezes the VM's state now (its cut), without waiting for QEMU's reply. */
    void stop() throws QmpException;

    /** After {@link #stop}: QEMU confirmed the stop, and the final transfer goes. */
    void completeSuspend() throws QmpException;

    /**
     * After {@link #completeSuspend}: how long after the stop's send QEMU froze the guest's clock, as QEMU's own trace says
     * it ({@link io.mekha.agent.qemu.RunStateTrace}); null where there is no trace, or the VM had stopped before.
     */
    default java.time.Duration freezeAfterStop() {
        return null;
    }

    /** Waits until the level-0 copy holds the whole state, the VM still paused. */
    void awaitCaptured() throws TransferException, InterruptedException;

    /**
     * Whether the level-0 copy is complete only after the resume (a background snapshot: the VM runs while its RAM as at
     * the cut streams on); then {@link #awaitStreamed} says when.
     */
    default boolean streamsAfterResume() {
        return false;
    }

    /** After the resume, for a transfer that {@link #streamsAfterResume}: waits until the level-0 copy holds the whole state. */
    default void awaitStreamed() throws TransferException, InterruptedException {
    }

    /** Before Tr: readies the resume, so that at Tr it only has to be sent. */
    default void prepareResume() throws QmpException {
    }

    /** Sends the {@code cont} that lets the VM run again (if Mekha paused it), without waiting for QEMU's reply. */
    void sendResume() throws QmpException;

    /** After {@link #sendResume}: QEMU confirmed the VM runs. */
    void completeResume() throws QmpException;

    /** Both halves of the resume, now. */
    default void resumeSource() throws QmpException {
        sendResume();
        completeResume();
    }

    /** Cancels the transfer, resumes the VM if Mekha paused it, drops the level-0 copy; never throws. */
    void abort();

    /**
     * Whether Mekha paused the VM and has not seen it resumed (a failed {@code cont}, a broken monitor during the
     * abort): then the VM may still be paused, and the agent's resume guard takes over.
     */
    default boolean leftPaused() {
        return false;
    }

    /**
     * Whether the VM was already paused by someone else (its user through libvirt, another monitor) when Mekha stopped it:
     * it is captured as it is and left paused at Tr; known after {@link #completeSuspend}.
     */
    default boolean pausedByOthersAtCut() {
        return false;
    }

    /** The figures of a completed transfer; after {@link #completeResume}. */
    TransferFigures figures(String liveEnd, int passes) throws InterruptedException;

    /** When QEMU itself stopped the VM (it finished the live stage early), or null; for a transfer about to be abandoned. */
    Instant stoppedByQemuAt() throws InterruptedException;

    /** The VM's disk image as it was at the cut (null without a disk, or before the capture). */
    Path cutDisk();

    /** Passes over memory so far (MTD's bulk pass counts as the first; 0 without a live stage). */
    default int passes() {
        return 0;
    }

    /** Bytes sent so far, from the last look at the live stage. */
    default long bytesSoFar() {
        return 0;
    }
}
