package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.TimeReply;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * How far an agent's clock is from the coordinator's, estimated by a round-trip exchange
 * (Cristian's method, best of several samples): {@code agentTime = coordinatorTime + offset},
 * within {@code uncertainty} (half the best round trip); {@code typicalRoundTrip} is the median
 * exchange, what a rendezvous call typically takes to arrive and be answered.
 */
public record ClockOffset(Duration offset, Duration uncertainty, Duration typicalRoundTrip) {

    public static final ClockOffset ZERO = new ClockOffset(Duration.ZERO, Duration.ZERO, Duration.ZERO);

    public ClockOffset(Duration offset, Duration uncertainty) {
        this(offset, uncertainty, uncertainty.multipliedBy(2));
    }

    public static ClockOffset estimate(AgentClient agent, Clock clock, int samples) throws AgentCallException {
        ClockOffset best = null;
        java.util.List<Duration> trips = new java.util.ArrayList<>();
        for (int i = 0; i < samples; i++) {
            Instant sent = clock.instant();
            TimeReply reply = agent.time();
            Instant received = clock.instant();
            Duration rtt = Duration.between(sent, received);
            if (i > 0 || samples == 1) {
                trips.add(rtt); // the first call may open the connection: not what a rendezvous call costs
            }
            Instant midpoint = sent.plus(rtt.dividedBy(2));
            ClockOffset sample = new ClockOffset(Duration.between(midpoint, reply.now()), rtt.dividedBy(2));
            if (best == null || sample.uncertainty().compareTo(best.uncertainty()) < 0) {
                best = sample;
            }
        }
        trips.sort(Duration::compareTo);
        return new ClockOffset(best.offset(), best.uncertainty(), trips.get(trips.size() / 2));
    }

    /** The agent-clock reading of a coordinator instant. */
    public Instant toAgent(Instant coordinatorTime) {
        return coordinatorTime.plus(offset);
    }

    /** The coordinator-clock reading of an agent instant. */
    public Instant toCoordinator(Instant agentTime) {
        return agentTime == null ? null : agentTime.minus(offset);
    }
}
