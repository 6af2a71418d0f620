package io.mekha.operator.run;

import io.mekha.agent.api.AgentDtos.RestartStatus;
import io.mekha.agent.api.AgentDtos.VmRestartStatus;
import io.mekha.agent.api.RestartState;
import io.mekha.api.v1alpha1.VmRestoreResult;
import io.mekha.operator.service.VmNames;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import io.mekha.storage.StorageLevel;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * What a restore that an operator restart interrupted left on the agents: finished (every VM of the
 * checkpoint resumed from it after the restore started: Tr came while no operator watched), or
 * not, and then called off everywhere so that it can start again from a clean state.
 */
public final class InterruptedRestore {
    /** Every VM resumed: what the agents report of it. */
    public record Finished(StorageLevel level, List<VmRestoreResult> vms) {}

    private final List<AgentClient> agents;

    public InterruptedRestore(List<AgentClient> agents) {
        this.agents = agents;
    }

    /**
     * The restore's result if every one of {@code vms} (the checkpoint's VMs in namespace {@code ns}) runs from
     * checkpoint {@code id} and resumed after {@code started}; empty otherwise, or when an agent cannot say.
     */
    public Optional<Finished> finished(String ns, String id, Set<String> vms, Instant started) {
        Map<String, VmRestoreResult> running = new LinkedHashMap<>();
        StorageLevel level = null;
        for (AgentClient agent : agents) {
            RestartStatus status;
            try {
                status = agent.restartStatus(id);
            } catch (AgentCallException e) {
                if (e.notFound()) {
                    continue; // no restart of this checkpoint there
                }
                return Optional.empty(); // cannot tell: start again
            }
            for (VmRestartStatus vm : status.vms()) {
                String name = VmNames.inNamespace(ns, vm.vm());
                if (vm.state() != RestartState.RUNNING || vm.resumedAt() == null || !vm.resumedAt().isAfter(started) || !vms.contains(name)) {
                    continue;
                }
                VmRestoreResult r = new VmRestoreResult();
                r.name = name;
                r.node = status.node();
                r.resumedAt = vm.resumedAt().toString();
                r.guestClockAtCut = vm.guestClockAtCut() == null ? null : vm.guestClockAtCut().toString();
                r.guestClockAfter = vm.guestClockAfter() == null ? null : vm.guestClockAfter().toString();
                running.put(name, r);
                level = status.level();
            }
        }
        if (!running.keySet().containsAll(vms)) {
            return Optional.empty();
        }
        List<VmRestoreResult> results = new ArrayList<>(running.values());
        results.sort((a, b) -> a.name.compareTo(b.name));
        return Optional.of(new Finished(level, results));
    }

    /**
     * Calls the restart of checkpoint {@code id} off on every agent and stops what they loaded or fed for it: VMs not
     * resumed stay as they were. Returns the agents that could not be told (they call a prepared restart off by
     * themselves, and stop loaded QEMUs after their hold).
     */
    public List<String> callOff(String id, String why) {
        List<String> unreached = new ArrayList<>();
        for (AgentClient agent : agents) {
            try {
                agent.callOffRestart(id, why); // stops what it loaded or fed for the restart too
            } catch (AgentCallException e) {
                if (!e.notFound()) {
                    unreached.add(agent.node() + " (" + e.getMessage() + ")");
                }
            }
        }
        return unreached;
    }
}
