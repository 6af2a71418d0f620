package io.mekha.protocol;

import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

/**
 * The result of a coordinated checkpoint of a VC: every VM's figures and the VC's own.
 *
 * @param suspendAt Ts, the rendezvous instant every VM was stopped at
 * @param resumeAt Tr, chosen after every VM was captured
 * @param liveEnd why the global live stage ended
 * @param timeToCheckpoint from the request to every VM running again
 */
public record CheckpointReport(String id, List<VmCheckpointReport> vms, Instant suspendAt, Instant resumeAt, String liveEnd,
                               Duration timeToCheckpoint) {

    /** Spread of the instants the VMs actually stopped at. */
    public Duration suspendSkew() {
        return spread(vms.stream().map(VmCheckpointReport::stoppedAt).toList());
    }

    /** Spread of the instants the VMs actually ran again. */
    public Duration resumeSkew() {
        return spread(vms.stream().map(VmCheckpointReport::resumedAt).toList());
    }

    /**
     * Spread of the time the guests' clocks stood still: from each VM's freeze ({@link VmCheckpointReport#frozenAt}) to
     * its RESUME event. Each VM resumes as late after Tr as it froze after Ts, so that the guests lose the same time
     * whatever the skews; what is left is how late each QEMU acted on its {@code cont}.
     */
    public Duration pauseSpread() {
        return spreadOf(vms.stream().filter(v -> v.resumedAt() != null && v.cutAt() != null)
                .map(v -> Duration.between(v.cutAt(), v.resumedAt())).toList());
    }

    /** True when no VM ran again before every VM was captured: the cut is consistent. */
    public boolean barrierHeld() {
        Instant lastCapture = vms.stream().map(VmCheckpointReport::capturedAt).filter(Objects::nonNull).max(Comparator.naturalOrder()).orElse(null);
        Instant firstResume = vms.stream().map(VmCheckpointReport::resumedAt).filter(Objects::nonNull).min(Comparator.naturalOrder()).orElse(null);
        return lastCapture != null && firstResume != null && firstResume.isAfter(lastCapture);
    }

    static Duration spreadOf(List<Duration> durations) {
        List<Duration> known = durations.stream().filter(Objects::nonNull).sorted().toList();
        return known.size() < 2 ? Duration.ZERO : known.get(known.size() - 1).minus(known.get(0));
    }

    static Duration spread(List<Instant> instants) {
        List<Instant> known = instants.stream().filter(Objects::nonNull).sorted().toList();
        return known.size() < 2 ? Duration.ZERO : Duration.between(known.get(0), known.get(known.size() - 1));
    }
}
