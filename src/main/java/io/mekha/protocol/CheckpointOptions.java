package io.mekha.protocol;

import io.mekha.model.TimePolicy;
import io.mekha.model.TransferMode;
import java.time.Duration;
import java.util.Map;

/**
 * How a coordinated checkpoint runs.
 *
 * @param maxLivePerVm each VM's own live-stage bound (its local ending condition's time bound)
 * @param globalLiveBound the live stage ends for all VMs together at the latest after this
 * @param completionTimeout how long capturing (the final transfer after the stop) may take
 * @param pauseDeadline each agent resumes the VMs it paused if no resume arrives within this
 * @param rendezvousLead how far ahead Ts is set, at least (grown to cover slow calls and the clock uncertainty: the VMs run
 *     until Ts, so a generous lead costs no pause); Tr follows the last capture as closely as every agent can hear it
 * @param bandwidthLimits bytes/s per VM transfer, by VM name (absent: uncapped)
 * @param timePolicy the default time policy of restarts from this checkpoint
 */
public record CheckpointOptions(TransferMode mode, Duration maxLivePerVm, Duration globalLiveBound, Duration completionTimeout,
                                Duration pauseDeadline, Duration rendezvousLead, Map<String, Long> bandwidthLimits,
                                TimePolicy timePolicy) {

    public static CheckpointOptions defaults() {
        return new CheckpointOptions(TransferMode.MTD, Duration.ofSeconds(30), Duration.ofSeconds(45), Duration.ofSeconds(120),
                Duration.ofSeconds(60), Duration.ofMillis(150), Map.of(), TimePolicy.VIRTUAL);
    }

    public CheckpointOptions {
        bandwidthLimits = Map.copyOf(bandwidthLimits);
    }

    public CheckpointOptions withMode(TransferMode m) {
        return new CheckpointOptions(m, maxLivePerVm, globalLiveBound, completionTimeout, pauseDeadline, rendezvousLead, bandwidthLimits, timePolicy);
    }

    public CheckpointOptions withLiveBounds(Duration perVm, Duration global) {
        return new CheckpointOptions(mode, perVm, global, completionTimeout, pauseDeadline, rendezvousLead, bandwidthLimits, timePolicy);
    }

    public CheckpointOptions withTimePolicy(TimePolicy policy) {
        return new CheckpointOptions(mode, maxLivePerVm, globalLiveBound, completionTimeout, pauseDeadline, rendezvousLead, bandwidthLimits,
                policy);
    }

    public CheckpointOptions withCompletionTimeout(Duration timeout) {
        return new CheckpointOptions(mode, maxLivePerVm, globalLiveBound, timeout, pauseDeadline, rendezvousLead, bandwidthLimits, timePolicy);
    }

    public CheckpointOptions withBandwidthLimits(Map<String, Long> limits) {
        return new CheckpointOptions(mode, maxLivePerVm, globalLiveBound, completionTimeout, pauseDeadline, rendezvousLead, limits, timePolicy);
    }
}
