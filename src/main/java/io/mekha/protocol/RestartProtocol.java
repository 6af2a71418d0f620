package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.RestartRequest;
import io.mekha.agent.api.AgentDtos.RestartStatus;
import io.mekha.agent.api.AgentDtos.VmRestartStatus;
import io.mekha.agent.api.RestartState;
import io.mekha.model.TimePolicy;
import io.mekha.storage.StorageLevel;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The coordinated restart: every VM of a checkpoint, loaded and paused at its cut on the node that
 * restarts it, resumed together at one rendezvous instant Tr; then each VM's time policy.
 */
final class RestartProtocol {
    private static final Duration POLL = Duration.ofMillis(25);
    /** How long an agent may take to feed its VMs' level-0 streams to their new QEMUs. */
    private static final Duration LOAD_TIMEOUT = Duration.ofMinutes(10);
    private static final Duration RESTART_TIMEOUT = Duration.ofSeconds(60);

    private final Clock clock;
    private final AgentCalls calls;
    private final Rendezvous rendezvous;
    private final Level0Placement placement;

    RestartProtocol(Clock clock, AgentCalls calls, Rendezvous rendezvous, Level0Placement placement) {
        this.clock = clock;
        this.calls = calls;
        this.rendezvous = rendezvous;
        this.placement = placement;
    }

    /**
     * Restarts every VM of checkpoint {@code id} from memory (its own node's copy, else a partner's), all resumed
     * together at a rendezvous instant, then applies {@code policy} to their clocks (null: the checkpoint's own).
     */
    RestartReport fromMemory(String id, TimePolicy policy, Duration slewPeriod, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        Map<String, AgentClient> chosen = placement.place(id);
        Map<AgentClient, List<String>> byAgent = new LinkedHashMap<>();
        chosen.forEach((vm, agent) -> byAgent.computeIfAbsent(agent, a -> new ArrayList<>()).add(vm));
        // where level 0 is a stream held in memory (KubeVirt), the slow part (feeding each new QEMU) comes before Tr is chosen
        AgentCalls.requireAll(calls.parallel(List.copyOf(byAgent.keySet()), agent -> agent.loadLevel0(id, byAgent.get(agent), LOAD_TIMEOUT)),
                "load from memory");
        return restartHolders(id, byAgent, StorageLevel.L0, policy, slewPeriod, listener, started);
    }

    /** Restarts a checkpoint's VMs that {@code holders} have loaded from {@code level} (paused, waiting), resumed together. */
    RestartReport loaded(String id, List<AgentClient> holders, StorageLevel level, TimePolicy policy, Duration slewPeriod,
                         ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        Map<AgentClient, List<String>> byAgent = new LinkedHashMap<>();
        holders.forEach(h -> byAgent.put(h, null));
        return restartHolders(id, byAgent, level, policy, slewPeriod, listener, clock.instant());
    }

    private RestartReport restartHolders(String id, Map<AgentClient, List<String>> vmsByAgent, StorageLevel level, TimePolicy policy,
                                         Duration slewPeriod, ProtocolListener listener, Instant started)
            throws CheckpointFailedException, InterruptedException {
        List<AgentClient> holders = List.copyOf(vmsByAgent.keySet());
        Map<AgentClient, ClockOffset> offsets = rendezvous.offsets(holders);
        Instant tr = rendezvous.generousInstant(CheckpointOptions.defaults().rendezvousLead(), offsets);
        listener.step("restarting checkpoint " + id + " from " + level + " on " + holders.size() + " node(s), resuming together at Tr = " + tr);
        String policyName = policy == null ? null : policy.name();
        AgentCalls.requireAll(calls.parallel(holders,
                agent -> agent.restart(id, new RestartRequest(offsets.get(agent).toAgent(tr), policyName, slewPeriod, level,
                        vmsByAgent.get(agent)))), "restart");
        Instant deadline = clock.instant().plus(RESTART_TIMEOUT);
        while (true) {
            Map<AgentClient, RestartStatus> states = AgentCalls.requireAll(calls.parallel(holders, agent -> agent.restartStatus(id)),
                    "restart status");
            List<String> failed = new ArrayList<>();
            boolean allRunning = true;
            for (var entry : states.entrySet()) {
                for (VmRestartStatus vm : entry.getValue().vms()) {
                    if (vm.state() == RestartState.FAILED) {
                        failed.add(vm.vm() + " on node " + entry.getKey().node() + ": " + vm.error());
                    }
                    allRunning &= vm.state() == RestartState.RUNNING;
                }
            }
            if (!failed.isEmpty()) {
                throw new CheckpointFailedException("restart from checkpoint " + id + " failed: " + String.join("; ", failed));
            }
            if (allRunning) {
                RestartReport report = report(id, states, offsets, tr, Duration.between(started, clock.instant()));
                listener.step("restart complete: resume skew " + report.resumeSkew().toNanos() / 1e6 + " ms");
                return report;
            }
            if (clock.instant().isAfter(deadline)) {
                throw new CheckpointFailedException("restart from checkpoint " + id + " did not finish within " + RESTART_TIMEOUT.toSeconds() + " s");
            }
            Thread.sleep(POLL.toMillis());
        }
    }

    private static RestartReport report(String id, Map<AgentClient, RestartStatus> states, Map<AgentClient, ClockOffset> offsets, Instant tr,
                                        Duration took) {
        Map<String, String> nodes = new HashMap<>();
        Map<String, Instant> resumed = new HashMap<>();
        Map<String, RestartReport.VmClock> clocks = new HashMap<>();
        states.forEach((agent, status) -> status.vms().forEach(vm -> {
            ClockOffset offset = offsets.get(agent);
            nodes.put(vm.vm(), agent.node());
            Instant resumedAt = offset.toCoordinator(vm.resumeEvent() != null ? vm.resumeEvent() : vm.resumedAt());
            resumed.put(vm.vm(), resumedAt);
            clocks.put(vm.vm(), new RestartReport.VmClock(vm.timePolicy(), vm.guestClockAtCut(), offset.toCoordinator(vm.hostTimeAtCut()),
                    vm.guestClockAfter(), offset.toCoordinator(vm.hostTimeAfter()), resumedAt, vm.timeNote()));
        }));
        return new RestartReport(id, nodes, tr, resumed, clocks, took);
    }
}
