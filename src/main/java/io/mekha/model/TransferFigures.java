package io.mekha.model;

import io.mekha.model.TransferMode;
import java.time.Duration;
import java.time.Instant;

/**
 * What one VM's checkpoint transfer cost, as measured.
 *
 * @param mekhaPaused from Mekha issuing {@code stop} (or QEMU stopping the VM itself, if earlier) to
 *     QEMU acknowledging Mekha's {@code cont}, measured around Mekha's own QMP calls (null when
 *     Mekha did not pause the VM, as in BackgroundSnapshot)
 * @param guestPaused from QEMU's STOP event to its RESUME event: how long the guest did not run
 * @param qemuDowntime QEMU's own downtime figure for the migration
 * @param bytesTransferred RAM bytes QEMU sent to the shadow
 * @param liveStage how long the VM ran while being copied before the cut (zero for StopAndCopy)
 * @param passes passes over memory during the live stage (the bulk pass is the first)
 * @param liveEnd why the live stage ended
 * @param total from preparing the shadow to the shadow holding the whole state
 * @param stopAt when the VM was stopped (QEMU's STOP event time): the cut
 * @param resumeAt when the VM ran again (QEMU's RESUME event time)
 */
public record TransferFigures(TransferMode mode, Duration mekhaPaused, Duration guestPaused, Duration qemuDowntime,
                              long bytesTransferred, Duration liveStage, int passes, String liveEnd, Duration total,
                              Instant stopAt, Instant resumeAt) {}
