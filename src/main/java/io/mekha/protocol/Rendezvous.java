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
    /** What an agent needs, once a rendezvous call has arrived, to act on it on time (parse, hand to its cut thread, wake). */
    static final Duration MARGIN = Duration.ofMillis(2);

    private final Clock clock;
    private final AgentCalls calls;

    Rendezvous(Clock clock, AgentCalls calls) {
        this.clock = clock;
        this.calls = calls;
    }

    Map<AgentClient, ClockOffset> offsets(List<AgentClient> targets) throws CheckpointFailedException {
        return AgentCalls.requireAll(calls.parallel(targets, agent -> ClockOffset.estimate(agent, clock, CLOCK_SAMPLES)), "clock exchange");
    }

    /**
     * An instant whose lead costs no pause (Ts: the VMs run until then; a restart's Tr: they wait at their cut), so
     * generous: at least {@code floor}, and four times the typical round trip to the slowest agent plus four times the
     * worst clock error, as measured just now.
     */
    Instant generousInstant(Duration floor, Map<AgentClient, ClockOffset> offsets) {
        Duration typical = slowestTypical(offsets);
        Duration lead = typical.multipliedBy(4).plus(worstUncertainty(offsets).multipliedBy(4));
        return clock.instant().plus(lead.compareTo(floor) > 0 ? lead : floor);
    }

    /**
     * Tr: every VM is paused until then, so the lead is as short as every agent can still hear it in time: the longer of
     * twice the typical round trip to the slowest agent and the slowest suspend call just made (a call as the resume will
     * be, under the load of the moment), twice the worst clock error (the instant must not have passed on an agent whose
     * clock runs ahead), and {@link #MARGIN} for the agent to act on it. An agent that hears it late resumes at once, and
     * the report's resume skew says by how much.
     */
    Instant resumeInstant(Map<AgentClient, ClockOffset> offsets, Duration slowestCall) {
        return clock.instant().plus(resumeLead(offsets, slowestCall));
    }

    static Duration resumeLead(Map<AgentClient, ClockOffset> offsets, Duration slowestCall) {
        Duration trip = slowestTypical(offsets).multipliedBy(2);
        Duration delivery = trip.compareTo(slowestCall) > 0 ? trip : slowestCall;
        return delivery.plus(worstUncertainty(offsets).multipliedBy(2)).plus(MARGIN);
    }

    private static Duration slowestTypical(Map<AgentClient, ClockOffset> offsets) {
        return offsets.values().stream().map(ClockOffset::typicalRoundTrip).max(Duration::compareTo).orElse(Duration.ZERO);
    }

    private static Duration worstUncertainty(Map<AgentClient, ClockOffset> offsets) {
        return offsets.values().stream().map(ClockOffset::uncertainty).max(Duration::compareTo).orElse(Duration.ZERO);
    }
}
