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
    /**
     * Clock exchanges in flight at once: a few, so that each round trip times the network and not a queue of
     * exchanges in the coordinator (measured: 256 at once made the uncertainty tens of milliseconds on 2 cores).
     */
    private static final int EXCHANGES_AT_ONCE = 8;
    /** What an agent needs, once a rendezvous call has arrived, to act on it on time (parse, hand to its cut thread, wake). */
    static final Duration MARGIN = Duration.ofMillis(2);

    private final Clock clock;
    private final AgentCalls calls;

    Rendezvous(Clock clock, AgentCalls calls) {
        this.clock = clock;
        this.calls = calls;
    }

    Map<AgentClient, ClockOffset> offsets(List<AgentClient> targets) throws CheckpointFailedException {
        return offsets(targets, CLOCK_SAMPLES);
    }

    /** As {@link #offsets(List)} with {@code samples} exchanges per agent (fewer while VMs are paused: each one lengthens the pause). */
    Map<AgentClient, ClockOffset> offsets(List<AgentClient> targets, int samples) throws CheckpointFailedException {
        return AgentCalls.requireAll(calls.parallel(targets, agent -> ClockOffset.estimate(agent, clock, samples), EXCHANGES_AT_ONCE),
                "clock exchange");
    }

    /**
     * An instant whose lead costs no pause (Ts: the VMs run until then; a restart's Tr: they wait at their cut), so
     * generous: at least {@code floor}, and four times the typical round trip to the slowest agent, four times the worst
     * clock error as measured just now, and twice {@code writeOut}, what handing the instant to every agent takes.
     */
    Instant generousInstant(Duration floor, Map<AgentClient, ClockOffset> offsets, Duration writeOut) {
        Duration typical = slowestTypical(offsets);
        Duration lead = typical.multipliedBy(4).plus(worstUncertainty(offsets).multipliedBy(4)).plus(writeOut.multipliedBy(2));
        return clock.instant().plus(lead.compareTo(floor) > 0 ? lead : floor);
    }

    /**
     * {@link #generousInstant(Duration, Map, Duration)} for an instant sent as ordinary calls, one per agent in parallel
     * (a restart's Tr): their spread is not measured, the floor has to cover it.
     */
    Instant generousInstant(Duration floor, Map<AgentClient, ClockOffset> offsets) {
        return generousInstant(floor, offsets, Duration.ZERO);
    }

    /**
     * Tr: every VM is paused until then, so the lead is as short as every agent can still hear it in time: twice the
     * way a message takes to the slowest agent right now ({@code recentWay}: how long the answer that completed the
     * barrier took to arrive; without it, half the typical round trip of the clock exchange, whichever is longer),
     * {@code writeOut} to hand Tr to every agent, twice the worst clock error (the instant must not have passed on an
     * agent whose clock runs ahead), and {@link #MARGIN} for the agent to act on it. An agent that hears it late
     * resumes at once, and the report's resume skew says by how much.
     */
    Instant resumeInstant(Map<AgentClient, ClockOffset> offsets, Duration recentWay, Duration writeOut) {
        return clock.instant().plus(resumeLead(offsets, recentWay, writeOut));
    }

    /** Tr for a resume sent as ordinary calls (one per agent, in parallel): as if writing it out cost one round trip. */
    Instant resumeInstant(Map<AgentClient, ClockOffset> offsets, Duration recentWay) {
        return resumeInstant(offsets, recentWay, slowestTypical(offsets));
    }

    static Duration resumeLead(Map<AgentClient, ClockOffset> offsets, Duration recentWay, Duration writeOut) {
        Duration typicalWay = slowestTypical(offsets).dividedBy(2);
        Duration way = recentWay.compareTo(typicalWay) > 0 ? recentWay : typicalWay;
        return way.multipliedBy(2).plus(writeOut).plus(worstUncertainty(offsets).multipliedBy(2)).plus(MARGIN);
    }

    private static Duration slowestTypical(Map<AgentClient, ClockOffset> offsets) {
        return offsets.values().stream().map(ClockOffset::typicalRoundTrip).max(Duration::compareTo).orElse(Duration.ZERO);
    }

    private static Duration worstUncertainty(Map<AgentClient, ClockOffset> offsets) {
        return offsets.values().stream().map(ClockOffset::uncertainty).max(Duration::compareTo).orElse(Duration.ZERO);
    }
}
