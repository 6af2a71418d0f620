package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.PartnerCopyState;
import io.mekha.agent.api.VmPhase;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which node restarts each VM of a checkpoint from memory: the node holding the VM's own level-0
 * copy if it answers, else a node holding a partner copy.
 */
final class Level0Placement {
    private final List<AgentClient> agents;
    private final AgentCalls calls;

    Level0Placement(List<AgentClient> agents, AgentCalls calls) {
        this.agents = agents;
        this.calls = calls;
    }

    /**
     * VM to the agent that restarts it. Refuses when a VM has no copy, or when a node that does not answer may have held
     * VMs no partner copy covers.
     */
    Map<String, AgentClient> place(String id) throws CheckpointFailedException {
        Map<String, AgentClient> local = new LinkedHashMap<>();
        Map<String, AgentClient> partner = new LinkedHashMap<>();
        List<String> unreachable = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        calls.parallel(agents, agent -> agent.status(id)).forEach((agent, result) -> {
            if (result.error() != null) {
                if (result.error().unreachable()) {
                    unreachable.add(agent.node());
                } else if (!result.error().notFound()) {
                    problems.add(agent.node() + ": " + result.error().getMessage());
                }
                return;
            }
            for (VmCheckpointStatus vm : result.value().vms()) {
                if (vm.phase() != VmPhase.RESUMED) {
                    problems.add("checkpoint " + id + " is not complete: VM '" + vm.vm() + "' on node " + agent.node() + " is " + vm.phase());
                } else if (vm.level0Held()) {
                    local.put(vm.vm(), agent);
                } else {
                    local.putIfAbsent(vm.vm(), null);
                }
            }
        });
        Map<String, String> partnerSources = new HashMap<>();
        calls.parallel(agents, agent -> agent.partners(id)).forEach((agent, result) -> {
            if (result.error() == null) {
                result.value().stream().filter(p -> p.state() == PartnerCopyState.HELD).forEach(p -> {
                    partner.putIfAbsent(p.vm(), agent);
                    partnerSources.put(p.vm(), p.sourceNode());
                });
            }
        });
        if (!problems.isEmpty()) {
            throw new CheckpointFailedException("cannot restart from checkpoint " + id + ": " + String.join("; ", problems));
        }
        for (String lost : unreachable) {
            if (!partnerSources.containsValue(lost)) {
                throw new CheckpointFailedException("cannot restart from checkpoint " + id + ": the agent on node " + lost
                        + " does not answer and no other node holds a copy of its VMs");
            }
        }
        Map<String, AgentClient> chosen = new LinkedHashMap<>();
        partner.keySet().forEach(vm -> local.putIfAbsent(vm, null));
        for (var entry : local.entrySet()) {
            AgentClient holder = entry.getValue() != null ? entry.getValue() : partner.get(entry.getKey());
            if (holder == null) {
                throw new CheckpointFailedException("cannot restart from checkpoint " + id + ": no node holds VM '" + entry.getKey()
                        + "' in memory any more");
            }
            chosen.put(entry.getKey(), holder);
        }
        if (chosen.isEmpty()) {
            throw new CheckpointFailedException("no agent holds checkpoint " + id);
        }
        return chosen;
    }

    /** Null when every VM of the checkpoint can restart from memory, else why not. */
    String problem(String id) {
        try {
            place(id);
            return null;
        } catch (CheckpointFailedException e) {
            return e.getMessage();
        }
    }
}
