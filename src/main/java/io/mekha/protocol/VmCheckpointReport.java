package io.mekha.protocol;

import io.mekha.model.TransferFigures;
import java.time.Instant;

/**
 * One VM's part of a coordinated checkpoint. Instants are on the coordinator's clock.
 *
 * @param liveDoneAt when the VM met its local ending condition
 * @param stoppedAt when QEMU stopped the VM (its STOP event): this VM's cut
 * @param capturedAt when its shadow held the whole state
 * @param resumedAt when QEMU ran the VM again (its RESUME event)
 * @param guestClockAtCut the guest's realtime clock at the cut (needs a guest agent; null without):
 *     with {@code stoppedAt}, the host time of the cut, what restarts apply their time policy from
 * @param liveRestarts how often QEMU ended this VM's live stage by itself and it started over (0 with the switchover held)
 * @param stopSentAt when the agent sent the stop ({@code stoppedAt} is when QEMU says the VM stopped)
 * @param frozenAt when the guest's clock froze at the cut: QEMU's run-state trace where the agent started QEMU, else the
 *     stop's send; between {@code stopSentAt} and {@code stoppedAt}. The VM resumes as long after Tr as this is after Ts.
 */
public record VmCheckpointReport(String vm, String node, TransferFigures figures, Instant liveDoneAt, Instant stoppedAt, Instant capturedAt,
                                 Instant resumedAt, Instant guestClockAtCut, int liveRestarts, Instant stopSentAt, Instant frozenAt) {

    /** The host instant of this VM's cut: when its guest's clock froze, else (a report without it) QEMU's STOP event. */
    public Instant cutAt() {
        return frozenAt != null ? frozenAt : stoppedAt;
    }

    /** Guest clock minus host clock at the cut. */
    public java.time.Duration guestOffsetAtCut() {
        return guestClockAtCut == null || cutAt() == null ? null : java.time.Duration.between(cutAt(), guestClockAtCut);
    }
}
