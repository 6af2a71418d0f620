package io.mekha.protocol;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * Rendezvous instants (Ts, Tr) that mean the same moment on every node: each agent's clock offset
 * estimated by round trips, and an instant far enough ahead for every agent to hear of it in time.
 */
final class Rendezvous {
    private static final int CLOCK_SAMPLES = 5;

    private final Clock clock;
    private final AgentCalls calls;

    Rendezvous(Clock clock, AgentCalls calls) {
        this.clock = clock;
        this.calls = calls;
    }

    Map<AgentClient, ClockOffset> offsets(List<AgentClient> targets) throws CheckpointFailedException {
        return AgentCalls.requireAll(calls.parallel(targets, agent -> ClockOffset.estimate(agent, clock, CLOCK_SAMPLES)), "clock exchange");
    }

    /** An instant at least {@code lead} ahead, and beyond what every agent's clock uncertainty needs. */
    Instant pick(Duration lead, Map<AgentClient, ClockOffset> offsets) {
        Duration worst = offsets.values().stream().map(ClockOffset::uncertainty).max(Duration::compareTo).orElse(Duration.ZERO);
        // every agent must hear of the instant before it comes: two round trips' worth beyond the base lead
        return clock.instant().plus(lead.plus(worst.multipliedBy(4)));
    }
}
