package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.PartnerCopyState;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Level 0 on partner nodes: every VM's shadow of a complete checkpoint copied into the memory of
 * another node, so that the loss of any one node leaves a copy of every VM.
 */
final class PartnerReplication {
    private final List<AgentClient> agents;
    private final Clock clock;
    private final AgentCalls calls;

    PartnerReplication(List<AgentClient> agents, Clock clock, AgentCalls calls) {
        this.agents = agents;
        this.clock = clock;
        this.calls = calls;
    }

    /**
     * Copies every VM's shadow of a complete checkpoint into the memory of another node (the next
     * node in the agent list, round robin), so that losing any one node leaves a copy of every
     * VM: the VM's own shadow on its node, and the partner copy elsewhere. The VMs run on
     * meanwhile. Costs each node the memory of the copies it holds for others; each partner
     * checks that it can lend it before it accepts. Needs two nodes or more.
     */
    CheckpointStorage.PartnerReport replicate(String checkpoint, ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        if (agents.size() < 2) {
            throw new CheckpointFailedException("a partner copy needs a second node; this VC has only node " + agents.get(0).node());
        }
        Map<AgentClient, CheckpointStatus> statuses = new LinkedHashMap<>();
        calls.parallel(agents, agent -> agent.status(checkpoint)).forEach((agent, r) -> {
            if (r.value() != null) {
                statuses.put(agent, r.value());
            }
        });
        if (statuses.isEmpty()) {
            throw new CheckpointFailedException("no agent holds checkpoint " + checkpoint);
        }
        Map<String, String> placed = new LinkedHashMap<>();
        Map<AgentClient, List<String>> hosted = new LinkedHashMap<>();
        try {
            for (var entry : statuses.entrySet()) {
                AgentClient source = entry.getKey();
                AgentClient partner = agents.get((agents.indexOf(source) + 1) % agents.size());
                Map<String, io.mekha.agent.api.AgentDtos.VmInfo> infos = new HashMap<>();
                source.vms().forEach(v -> infos.put(v.name(), v));
                for (VmCheckpointStatus vm : entry.getValue().vms()) {
                    io.mekha.agent.api.AgentDtos.VmInfo info = infos.get(vm.vm());
                    if (info == null || info.spec() == null) {
                        throw new CheckpointFailedException("node " + source.node() + " no longer describes VM '" + vm.vm() + "'");
                    }
                    var f = vm.figures();
                    // one key per copy, to both nodes only: the stream between them is TLS over it (authenticated, encrypted)
                    String key = io.mekha.model.StreamKey.random();
                    var copy = partner.hostPartner(checkpoint, new io.mekha.agent.api.AgentDtos.PartnerShadowRequest(vm.vm(), source.node(),
                            info.spec(), info.accelerator(), partner.base().getHost(), f != null && f.stopAt() != null ? f.stopAt() : vm.stopIssuedAt(),
                            vm.guestClockAtCut(), null, vm.cutDisk(), vm.stopLate(), key));
                    hosted.computeIfAbsent(partner, a -> new ArrayList<>()).add(vm.vm());
                    listener.step("copying VM '" + vm.vm() + "' from node " + source.node() + " into the memory of node " + partner.node());
                    source.replicate(checkpoint, new io.mekha.agent.api.AgentDtos.ReplicateRequest(vm.vm(), copy.uri(), key));
                    placed.put(vm.vm(), partner.node());
                }
            }
            Instant deadline = clock.instant().plus(Duration.ofMinutes(10));
            for (var entry : hosted.entrySet()) {
                while (true) {
                    List<io.mekha.agent.api.AgentDtos.PartnerShadow> copies = entry.getKey().partners(checkpoint);
                    List<String> failed = copies.stream().filter(c -> c.state() == PartnerCopyState.FAILED).map(c -> c.vm() + ": " + c.error()).toList();
                    if (!failed.isEmpty()) {
                        throw new CheckpointFailedException("node " + entry.getKey().node() + " could not load its partner copies: "
                                + String.join("; ", failed));
                    }
                    if (copies.stream().filter(c -> entry.getValue().contains(c.vm())).allMatch(c -> c.state() == PartnerCopyState.HELD)) {
                        break;
                    }
                    if (clock.instant().isAfter(deadline)) {
                        throw new CheckpointFailedException("partner copies on node " + entry.getKey().node() + " did not load in 10 minutes");
                    }
                    Thread.sleep(50);
                }
            }
        } catch (AgentCallException e) {
            dropCopies(checkpoint, hosted.keySet());
            throw new CheckpointFailedException("copying checkpoint " + checkpoint + " to partner nodes failed, partner copies dropped"
                    + " (the shadows on the VMs' own nodes stay): " + e.getMessage(), e);
        } catch (CheckpointFailedException e) {
            dropCopies(checkpoint, hosted.keySet());
            throw e;
        }
        listener.step("every VM of checkpoint " + checkpoint + " is in the memory of two nodes: " + placed);
        return new CheckpointStorage.PartnerReport(checkpoint, placed, Duration.between(started, clock.instant()));
    }

    private void dropCopies(String checkpoint, java.util.Collection<AgentClient> holders) {
        calls.parallel(List.copyOf(holders), agent -> {
            agent.dropPartners(checkpoint);
            return Boolean.TRUE;
        });
    }

}
