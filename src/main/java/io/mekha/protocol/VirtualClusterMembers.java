package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.VmInfo;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** Which agent runs which VM of a VC, found by asking every agent; refuses unknown and duplicate VMs. */
public record VirtualClusterMembers(Map<AgentClient, List<String>> vmsByAgent) {

    public static VirtualClusterMembers resolve(List<String> vms, List<AgentClient> agents) throws CheckpointFailedException {
        if (vms.isEmpty()) {
            throw new CheckpointFailedException("the VC has no VMs to checkpoint");
        }
        Set<String> unique = new LinkedHashSet<>();
        for (String vm : vms) {
            if (!unique.add(vm)) {
                throw new CheckpointFailedException("VM '" + vm + "' is named twice; name each VM of the VC once");
            }
        }
        Map<String, AgentClient> host = new TreeMap<>();
        Map<String, List<String>> seen = new TreeMap<>();
        for (AgentClient agent : agents) {
            List<VmInfo> running;
            try {
                running = agent.vms();
            } catch (AgentCallException e) {
                throw new CheckpointFailedException("cannot list the VMs of agent " + agent.node() + ": " + e.getMessage(), e);
            }
            seen.put(agent.node(), running.stream().map(VmInfo::name).toList());
            for (VmInfo vm : running) {
                AgentClient other = host.putIfAbsent(vm.name(), agent);
                if (other != null && unique.contains(vm.name())) {
                    throw new CheckpointFailedException("VM '" + vm.name() + "' is reported by two agents (" + other.node()
                            + " and " + agent.node() + "); a VM must run on one node");
                }
            }
        }
        Map<AgentClient, List<String>> byAgent = new LinkedHashMap<>();
        for (String vm : unique) {
            AgentClient agent = host.get(vm);
            if (agent == null) {
                throw new CheckpointFailedException("unknown VM '" + vm + "': no agent runs it (agents and their VMs: " + seen + ")");
            }
            byAgent.computeIfAbsent(agent, a -> new ArrayList<>()).add(vm);
        }
        return new VirtualClusterMembers(byAgent);
    }

    public List<AgentClient> agents() {
        return List.copyOf(vmsByAgent.keySet());
    }

    public String nodeOf(String vm) {
        return vmsByAgent.entrySet().stream().filter(e -> e.getValue().contains(vm)).map(e -> e.getKey().node()).findFirst().orElse("?");
    }
}
