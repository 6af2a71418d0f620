package io.mekha.protocol;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * The result of restarting a VC from a checkpoint.
 *
 * @param resumeAt Tr, the rendezvous instant every VM was resumed at
 * @param resumedAt per VM, when QEMU ran it again (RESUME event, coordinator clock)
 * @param clocks per VM, its guest clock across the restart
 */
public record RestartReport(String checkpointId, Map<String, String> nodes, Instant resumeAt, Map<String, Instant> resumedAt,
                            Map<String, VmClock> clocks, Duration timeToRestart) {

    /**
     * One VM's guest realtime clock across a restart (guest readings need a guest agent; null without).
     *
     * @param guestAtCut the guest clock at the cut, at host time {@code hostAtCut}
     * @param guestAfter the guest clock read just after the restart, at host time {@code hostAfter}
     * @param resumedAt when the VM ran again
     */
    public record VmClock(String timePolicy, Instant guestAtCut, Instant hostAtCut, Instant guestAfter, Instant hostAfter,
                          Instant resumedAt, String note) {

        /**
         * How far the guest clock jumped across the restart: its reading after the restart minus its
         * reading at the cut minus the time it actually ran since it resumed. Zero under Virtual; the
         * wall-clock gap under Step.
         */
        public Duration jump() {
            if (guestAtCut == null || guestAfter == null || hostAfter == null || resumedAt == null) {
                return null;
            }
            return Duration.between(guestAtCut, guestAfter).minus(Duration.between(resumedAt, hostAfter));
        }

        /** Guest minus host at the cut. */
        public Duration offsetBefore() {
            return guestAtCut == null || hostAtCut == null ? null : Duration.between(hostAtCut, guestAtCut);
        }

        /** Guest minus host just after the restart. */
        public Duration offsetAfter() {
            return guestAfter == null || hostAfter == null ? null : Duration.between(hostAfter, guestAfter);
        }
    }

    public Duration resumeSkew() {
        return CheckpointReport.spread(List.copyOf(resumedAt.values()));
    }

    /**
     * Spread of the time each guest lost, from its stop at the cut to its resume here: what moves the distances
     * between the guests' clocks (each VM resumes as late after Tr as it stopped after Ts, so this stays near zero).
     */
    public Duration lostSpread() {
        return CheckpointReport.spreadOf(clocks.values().stream().filter(c -> c.hostAtCut() != null && c.resumedAt() != null)
                .map(c -> Duration.between(c.hostAtCut(), c.resumedAt())).toList());
    }

    /** The offset between two VMs' guest clocks (a minus b) at the cut, or null when unknown. */
    public Duration interVmOffsetBefore(String a, String b) {
        VmClock x = clocks.get(a);
        VmClock y = clocks.get(b);
        return x == null || y == null || x.offsetBefore() == null || y.offsetBefore() == null ? null
                : x.offsetBefore().minus(y.offsetBefore());
    }

    /** The offset between two VMs' guest clocks (a minus b) just after the restart, or null when unknown. */
    public Duration interVmOffsetAfter(String a, String b) {
        VmClock x = clocks.get(a);
        VmClock y = clocks.get(b);
        return x == null || y == null || x.offsetAfter() == null || y.offsetAfter() == null ? null
                : x.offsetAfter().minus(y.offsetAfter());
    }
}
