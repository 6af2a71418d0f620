package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.model.TimePolicy;
import io.mekha.model.TransferMode;
import java.time.Duration;
import java.util.Map;

/** A prepare request, checked: how each VM's transfer runs, and how long the agent waits for the coordinator. */
record PreparePlan(TransferMode mode, LiveStageBounds bounds, Map<String, Long> bandwidthLimits, Duration pauseDeadline,
                   TimePolicy timePolicy) {
    static final Duration DEFAULT_PAUSE_DEADLINE = Duration.ofSeconds(60);

    static PreparePlan of(String id, PrepareRequest request) throws AgentException {
        if (request.vms() == null || request.vms().isEmpty()) {
            throw AgentException.invalid("checkpoint " + id + ": name at least one VM");
        }
        try {
            TransferMode mode = TransferMode.parse(request.mode() == null ? "MTD" : request.mode());
            LiveStageBounds bounds = LiveStageBounds.defaults();
            if (request.maxLive() != null) {
                bounds = bounds.withMaxLive(request.maxLive());
            }
            if (request.completionTimeout() != null) {
                bounds = bounds.withCompletionTimeout(request.completionTimeout());
            }
            Map<String, Long> limits = new java.util.HashMap<>();
            if (request.bandwidthLimits() != null) {
                for (var limit : request.bandwidthLimits().entrySet()) {
                    bounds.withBandwidthLimit(limit.getValue() == null ? -1 : limit.getValue()); // validates
                    limits.put(limit.getKey(), limit.getValue());
                }
            }
            Duration deadline = request.pauseDeadline() == null ? DEFAULT_PAUSE_DEADLINE : request.pauseDeadline();
            return new PreparePlan(mode, bounds, Map.copyOf(limits), deadline, GuestTime.policy(id, request.timePolicy()));
        } catch (IllegalArgumentException e) {
            throw AgentException.invalid("checkpoint " + id + ": " + e.getMessage());
        }
    }

    LiveStageBounds boundsFor(String vm) {
        return bounds.withBandwidthLimit(bandwidthLimits.getOrDefault(vm, 0L));
    }
}
