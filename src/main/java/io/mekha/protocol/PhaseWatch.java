package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.VmPhase;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Waits for every agent's VMs of a checkpoint to reach a phase, hearing each agent the moment a VM
 * changes (a long poll per agent, all at once) instead of polling: the barrier is known within one
 * call's latency of the last capture. A VM that fails or is aborted ends the wait at once, whatever
 * the other agents are doing.
 */
final class PhaseWatch {
    /** The most one long poll waits before it asks again (a dead agent is noticed by its call failing). */
    private static final Duration LONG_POLL = Duration.ofSeconds(5);

    /**
     * What the wait saw: every agent's last status, when it arrived (this side's clock), and whether the phase was
     * reached before the deadline.
     */
    record Outcome(Map<AgentClient, CheckpointStatus> statuses, Map<AgentClient, Instant> arrivals, boolean reached) {

        /**
         * How long the answer that arrived last took on its way here: arrival minus the agent's own {@code at} (on this
         * side's clock). The way from the agents at the moment the barrier was reached, when the other agents are
         * already quiet; answers that arrived in a crowd before it measured the crowd.
         */
        Duration lastArrival(Map<AgentClient, ClockOffset> offsets) {
            AgentClient last = null;
            for (var e : arrivals.entrySet()) {
                if (last == null || e.getValue().isAfter(arrivals.get(last))) {
                    last = e.getKey();
                }
            }
            CheckpointStatus status = last == null ? null : statuses.get(last);
            ClockOffset offset = last == null ? null : offsets.get(last);
            if (status == null || status.at() == null || offset == null) {
                return Duration.ZERO;
            }
            Duration way = Duration.between(offset.toCoordinator(status.at()), arrivals.get(last));
            return way.isNegative() ? Duration.ZERO : way;
        }
    }

    private final Clock clock;
    private final AgentCalls calls;

    PhaseWatch(Clock clock, AgentCalls calls) {
        this.clock = clock;
        this.calls = calls;
    }

    /**
     * Until every VM on every agent satisfies {@code done}, or {@code deadline} passes (then {@code reached} is false).
     * Throws at once when a VM is FAILED or ABORTED, or an agent cannot be asked.
     */
    Outcome await(String id, List<AgentClient> agents, VmPhase phase, Instant deadline)
            throws CheckpointFailedException, InterruptedException {
        Map<AgentClient, Future<Seen>> watches = new LinkedHashMap<>();
        BlockingQueue<AgentClient> answered = new LinkedBlockingQueue<>();
        for (AgentClient agent : agents) {
            watches.put(agent, calls.submit(() -> {
                try {
                    return watch(id, agent, phase, deadline);
                } finally {
                    answered.add(agent);
                }
            }));
        }
        Map<AgentClient, CheckpointStatus> statuses = new LinkedHashMap<>();
        Map<AgentClient, Instant> arrivals = new LinkedHashMap<>();
        try {
            for (int i = 0; i < agents.size(); i++) {
                // whichever agent answers first, so that a failure anywhere is heard at once
                AgentClient agent = answered.take();
                try {
                    Seen seen = watches.get(agent).get();
                    statuses.put(agent, seen.status());
                    arrivals.put(agent, seen.arrived());
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    if (cause instanceof CheckpointFailedException failed) {
                        throw failed;
                    }
                    if (cause instanceof AgentCallException call) {
                        throw new CheckpointFailedException((call.unreachable() ? "agent on node " + agent.node() + " unreachable"
                                : "status refused by node " + agent.node()) + ": " + call.getMessage(), call);
                    }
                    throw new CheckpointFailedException("watching node " + agent.node() + " failed: " + cause, cause);
                }
            }
        } finally {
            watches.values().forEach(f -> f.cancel(true));
        }
        boolean reached = statuses.values().stream().flatMap(s -> s.vms().stream()).allMatch(v -> v.phase() == phase);
        return new Outcome(statuses, arrivals, reached);
    }

    /** An agent's status, and when it arrived. */
    private record Seen(CheckpointStatus status, Instant arrived) {}

    /**
     * One agent: its status, long-polled until its VMs are in {@code phase}, one breaks, or the deadline passes. The
     * agent answers once they are (not at every phase on the way), so a barrier costs one answer per node.
     */
    private Seen watch(String id, AgentClient agent, VmPhase phase, Instant deadline)
            throws AgentCallException, CheckpointFailedException {
        CheckpointStatus status = agent.status(id);
        Instant arrived = clock.instant();
        while (true) {
            for (VmCheckpointStatus vm : status.vms()) {
                if (vm.phase() == VmPhase.FAILED || vm.phase() == VmPhase.ABORTED) {
                    throw new CheckpointFailedException("VM '" + vm.vm() + "' on node " + agent.node() + " " + vm.phase() + ": " + vm.error());
                }
            }
            if (status.vms().stream().allMatch(v -> v.phase() == phase)) {
                return new Seen(status, arrived);
            }
            Duration left = Duration.between(clock.instant(), deadline);
            if (left.isNegative() || left.isZero()) {
                return new Seen(status, arrived);
            }
            status = agent.awaitPhase(id, phase, left.compareTo(LONG_POLL) < 0 ? left : LONG_POLL);
            arrived = clock.instant();
        }
    }
}
