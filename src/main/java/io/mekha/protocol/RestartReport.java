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
 */
public record RestartReport(String checkpointId, Map<String, String> nodes, Instant resumeAt, Map<String, Instant> resumedAt,
                            Duration timeToRestart) {

    public Duration resumeSkew() {
        return CheckpointReport.spread(List.copyOf(resumedAt.values()));
    }
}
