package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.TransferProgress;
import io.mekha.agent.storage.TransferMeter;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The long transfers of this node that someone may follow (flushes, copies between levels, loads for a restore): one
 * meter per VM and purpose. A finished one stays listed for a while, so that a follower polling now and then sees its end.
 */
final class Transfers {
    static final Duration KEPT_AFTER_END = Duration.ofMinutes(2);

    private final String node;
    private final List<TransferMeter> meters = new CopyOnWriteArrayList<>();

    Transfers(String node) {
        this.node = node;
    }

    /** A meter for a new transfer of {@code stages} stages (each a pass over its bytes); it replaces an earlier one of the same checkpoint, VM and purpose. */
    TransferMeter open(String checkpoint, String vm, String purpose, int stages) {
        TransferMeter meter = new TransferMeter(checkpoint, vm, purpose, stages, -1);
        Instant forgetBefore = Instant.now().minus(KEPT_AFTER_END);
        meters.removeIf(m -> m.checkpoint().equals(checkpoint) && m.vm().equals(vm) && m.purpose().equals(purpose)
                || m.isFinished() && m.finishedAt().isBefore(forgetBefore));
        meters.add(meter);
        return meter;
    }

    private static double known(double fraction) {
        return Double.isNaN(fraction) ? -1 : fraction;
    }

    /** The transfers of checkpoint {@code checkpoint} on this node, running or ended lately, oldest first. */
    List<TransferProgress> of(String checkpoint, Instant now) {
        return meters.stream().filter(m -> m.checkpoint().equals(checkpoint))
                .map(m -> new TransferProgress(m.vm(), node, m.purpose(), m.activity(), m.done(), m.total(), known(m.fraction()),
                        m.moved(), known(m.overall()), m.startedAt(), m.finishedAt(), m.error(), now))
                .toList();
    }
}
