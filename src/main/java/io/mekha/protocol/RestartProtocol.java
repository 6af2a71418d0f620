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
        List<AgentClient> holders = List.copyOf(byAgent.keySet());
        try {
            AgentCalls.requireAll(calls.parallel(holders, agent -> agent.loadLevel0(id, byAgent.get(agent), LOAD_TIMEOUT)), "load from memory");
        } catch (CheckpointFailedException e) {
            dropLoaded(id, holders);
            throw e;
        }
        return restartHolders(id, byAgent, StorageLevel.L0, policy, slewPeriod, listener, started);
    }

    /** Restarts a checkpoint's VMs that {@code holders} have loaded from {@code level} (paused, waiting), resumed together. */
    RestartReport loaded(String id, List<AgentClient> holders, StorageLevel level, TimePolicy policy, Duration slewPeriod,
                         ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        Map<AgentClient, List<String>> byAgent = new LinkedHashMap<>();
        holders.forEach(h -> byAgent.put(h, null));
        return restartHolders(id, byAgent, level, policy, slewPeriod, listener, clock.instant());
    }

    /**
     * Prepares the restart on every holder (each checks and takes its copies, touching nothing), then arms them all with
     * one Tr. A holder that refuses, fails or does not answer calls the restart off on every holder: before Tr that leaves
     * the whole VC as it was, never half of it back at the cut.
     */
    private RestartReport restartHolders(String id, Map<AgentClient, List<String>> vmsByAgent, StorageLevel level, TimePolicy policy,
                                         Duration slewPeriod, ProtocolListener listener, Instant started)
            throws CheckpointFailedException, InterruptedException {
        List<AgentClient> holders = List.copyOf(vmsByAgent.keySet());
        try {
            String policyName = policy == null ? null : policy.name();
            AgentCalls.requireAll(calls.parallel(holders,
                    agent -> agent.restart(id, new RestartRequest(null, policyName, slewPeriod, level, vmsByAgent.get(agent)))), "prepare the restart");
            Map<AgentClient, ClockOffset> offsets = rendezvous.offsets(holders);
            Instant tr = rendezvous.generousInstant(CheckpointOptions.defaults().rendezvousLead(), offsets);
            listener.step("restarting checkpoint " + id + " from " + level + " on " + holders.size() + " node(s), resuming together at Tr = " + tr);
            AgentCalls.requireAll(calls.parallel(holders, agent -> agent.armRestart(id, offsets.get(agent).toAgent(tr))), "arm the restart");
            RestartReport report = awaitRunning(id, holders, offsets, tr, started);
            listener.step("restart complete: resume skew " + report.resumeSkew().toNanos() / 1e6 + " ms");
            return report;
        } catch (CheckpointFailedException e) {
            throw new CheckpointFailedException(e.getMessage() + "; " + callOff(id, holders, e.getMessage()), e);
        } catch (InterruptedException e) {
            Thread.interrupted(); // the call-off must still go out
            try {
                listener.step("restart from checkpoint " + id + " interrupted; " + callOff(id, holders, "the restart was interrupted"));
            } finally {
                Thread.currentThread().interrupt();
            }
            throw e;
        }
    }

    private RestartReport awaitRunning(String id, List<AgentClient> holders, Map<AgentClient, ClockOffset> offsets, Instant tr, Instant started)
            throws CheckpointFailedException, InterruptedException {
        Instant deadline = clock.instant().plus(RESTART_TIMEOUT);
        while (true) {
            Map<AgentClient, RestartStatus> states = AgentCalls.requireAll(calls.parallel(holders, agent -> agent.restartStatus(id)),
                    "restart status");
            List<String> failed = new ArrayList<>();
            boolean allRunning = true;
            for (var entry : states.entrySet()) {
                for (VmRestartStatus vm : entry.getValue().vms()) {
                    if (vm.state() == RestartState.FAILED || vm.state() == RestartState.CANCELLED) {
                        failed.add(vm.vm() + " on node " + entry.getKey().node() + ": " + vm.error());
                    }
                    allRunning &= vm.state() == RestartState.RUNNING;
                }
            }
            if (!failed.isEmpty()) {
                throw new CheckpointFailedException("restart from checkpoint " + id + " failed: " + String.join("; ", failed));
            }
            if (allRunning) {
                return report(id, states, offsets, tr, Duration.between(started, clock.instant()));
            }
            if (clock.instant().isAfter(deadline)) {
                throw new CheckpointFailedException("restart from checkpoint " + id + " did not finish within " + RESTART_TIMEOUT.toSeconds() + " s");
            }
            Thread.sleep(POLL.toMillis());
        }
    }

    /**
     * Calls the restart off on every holder (which also stops whatever it loaded for it); says which VMs were left as they
     * were and which had resumed from the cut already (those run on: a later restart replaces them).
     */
    private String callOff(String id, List<AgentClient> holders, String why) {
        List<String> left = new ArrayList<>();
        List<String> resumed = new ArrayList<>();
        List<String> unreachable = new ArrayList<>();
        calls.parallel(holders, agent -> agent.callOffRestart(id, why)).forEach((agent, r) -> {
            if (r.error() != null) {
                unreachable.add(agent.node() + " (" + r.error().getMessage() + ")");
                return;
            }
            for (VmRestartStatus vm : r.value().vms()) {
                (vm.state() == RestartState.RUNNING ? resumed : left).add(vm.vm());
            }
        });
        StringBuilder said = new StringBuilder("the restart was called off on every node");
        if (!left.isEmpty()) {
            java.util.Collections.sort(left);
            said.append(": ").append(String.join(", ", left)).append(" left as they were (level-0 copies kept)");
        }
        if (!resumed.isEmpty()) {
            java.util.Collections.sort(resumed);
            said.append("; ").append(String.join(", ", resumed)).append(" had resumed from the cut already and run on");
        }
        if (!unreachable.isEmpty()) {
            said.append("; not reached: ").append(String.join(", ", unreachable))
                    .append(" (an agent calls a prepared restart off by itself after 2 min)");
        }
        return said.toString();
    }

    private void dropLoaded(String id, List<AgentClient> holders) {
        calls.parallel(holders, agent -> {
            agent.dropLoaded(id);
            return Boolean.TRUE;
        });
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
