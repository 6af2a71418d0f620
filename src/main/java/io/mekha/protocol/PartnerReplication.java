package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.Level0Room;
import io.mekha.agent.api.AgentDtos.PartnerCopyInfo;
import io.mekha.agent.api.AgentDtos.PartnerReservation;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.ReplicateRequest;
import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.api.PartnerCopyState;
import io.mekha.agent.api.PartnerKind;
import io.mekha.model.StreamKey;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Level 0 on partner nodes: every VM's copy of a complete checkpoint also held in the memory of another node, so that
 * the loss of any one node leaves a copy of every VM. Room is kept on the partners before the cut ({@link #reserve}: a
 * plan that does not fit is refused before anything is paused); after the checkpoint each VM's node sends its copy to
 * its partner with the copy's key, which only the two nodes are given ({@link #replicate}).
 */
final class PartnerReplication {
    private static final Duration LOAD_TIMEOUT = Duration.ofMinutes(10);

    private final List<AgentClient> agents;
    private final Clock clock;
    private final AgentCalls calls;

    PartnerReplication(List<AgentClient> agents, Clock clock, AgentCalls calls) {
        this.agents = agents;
        this.clock = clock;
        this.calls = calls;
    }

    /** Room kept on {@code partner} for VM {@code vm}'s copy, and the copy's key (known to the coordinator and the two nodes only). */
    record Reserved(String vm, String sourceNode, AgentClient partner, String key, PartnerCopyInfo room) {}

    /**
     * Keeps room on partner nodes for every VM of {@code nodeByVm} (VM to its node), before the checkpoint's cut: a plan
     * by what each node lends now ({@link PartnerPlan}), then each partner asked to keep it. Refused, with nothing kept,
     * when it does not fit or a partner says no.
     */
    Map<String, Reserved> reserve(String checkpoint, Map<String, String> nodeByVm) throws CheckpointFailedException {
        Map<String, AgentClient> byNode = byNode();
        List<PartnerPlan.Vm> vms = new ArrayList<>();
        Map<String, List<String>> vmsOfNode = new LinkedHashMap<>();
        nodeByVm.forEach((vm, node) -> vmsOfNode.computeIfAbsent(node, n -> new ArrayList<>()).add(vm));
        for (var entry : vmsOfNode.entrySet()) {
            AgentClient source = byNode.get(entry.getKey());
            if (source == null) {
                throw new CheckpointFailedException("no agent answers for node " + entry.getKey() + " (VMs " + entry.getValue() + ")");
            }
            Map<String, Long> memory = new HashMap<>();
            try {
                for (VmInfo info : source.vms()) {
                    memory.put(info.name(), info.spec() == null ? 0 : info.spec().memoryMiB());
                }
            } catch (AgentCallException e) {
                throw new CheckpointFailedException("cannot ask node " + source.node() + " for its VMs' sizes: " + e.getMessage(), e);
            }
            for (String vm : entry.getValue()) {
                Long mib = memory.get(vm);
                if (mib == null || mib <= 0) {
                    throw new CheckpointFailedException("node " + source.node() + " does not say how much memory VM '" + vm + "' has");
                }
                vms.add(new PartnerPlan.Vm(vm, entry.getKey(), mib));
            }
        }
        Map<String, String> plan = PartnerPlan.place(vms, lendingNodes(kind -> kind != PartnerKind.NONE));
        Map<String, Reserved> reserved = new LinkedHashMap<>();
        try {
            for (var entry : plan.entrySet()) {
                AgentClient partner = byNode.get(entry.getValue());
                String vm = entry.getKey();
                String key = StreamKey.random();
                long mib = vms.stream().filter(v -> v.name().equals(vm)).findFirst().orElseThrow().memoryMiB();
                PartnerCopyInfo room = partner.reservePartner(checkpoint, new PartnerReservation(vm, nodeByVm.get(vm), mib, key,
                        partner.base().getHost()));
                reserved.put(vm, new Reserved(vm, nodeByVm.get(vm), partner, key, room));
            }
        } catch (AgentCallException e) {
            drop(checkpoint, reserved.values().stream().map(Reserved::partner).distinct().toList());
            throw new CheckpointFailedException("keeping room for level 0 on partner nodes failed (" + e.getMessage() + "); no room is kept", e);
        }
        return reserved;
    }

    /**
     * Sends every VM's copy of a complete checkpoint to its partner node and returns once every partner holds its copies
     * whole. Uses the room {@code reserved} before the cut (missing VMs: kept now; null: none, and any room or copy the
     * partners keep for this checkpoint is let go first). The VMs run on meanwhile. A failure drops every partner copy of
     * the checkpoint: the VMs' own copies stay.
     *
     * @return VM to the node that now also holds it in memory
     */
    CheckpointStorage.PartnerReport replicate(String checkpoint, Map<String, Reserved> reserved, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
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
        Map<String, AgentClient> sources = new LinkedHashMap<>();
        Map<String, VmCheckpointStatus> vms = new LinkedHashMap<>();
        statuses.forEach((agent, status) -> status.vms().forEach(vm -> {
            sources.put(vm.vm(), agent);
            vms.put(vm.vm(), vm);
        }));
        if (reserved == null) {
            // room another coordinator kept (one that went away: its keys went with it) is of no use: let it go first
            drop(checkpoint, agents);
        }
        Map<String, Reserved> rooms = new LinkedHashMap<>(reserved == null ? Map.of() : reserved);
        rooms.keySet().retainAll(sources.keySet());
        List<AgentClient> partners = new ArrayList<>(rooms.values().stream().map(Reserved::partner).distinct().toList());
        try {
            Map<String, String> late = new LinkedHashMap<>();
            sources.forEach((vm, agent) -> {
                if (!rooms.containsKey(vm)) {
                    late.put(vm, agent.node());
                }
            });
            if (!late.isEmpty()) {
                Map<String, Reserved> more = reserve(checkpoint, late);
                rooms.putAll(more);
                more.values().stream().map(Reserved::partner).filter(p -> !partners.contains(p)).forEach(partners::add);
            }
            Map<AgentClient, List<Reserved>> bySource = new LinkedHashMap<>();
            rooms.values().forEach(r -> bySource.computeIfAbsent(sources.get(r.vm()), a -> new ArrayList<>()).add(r));
            // each node sends its VMs one after another; the nodes send at once
            AgentCalls.requireAll(calls.parallel(List.copyOf(bySource.keySet()), source -> {
                for (Reserved r : bySource.get(source)) {
                    listener.step("copying VM '" + r.vm() + "' from node " + source.node() + " into the memory of node " + r.partner().node());
                    send(checkpoint, source, vms.get(r.vm()), r);
                }
                return Boolean.TRUE;
            }), "copying level 0 to partner nodes");
            awaitHeld(checkpoint, rooms);
        } catch (CheckpointFailedException e) {
            drop(checkpoint, partners);
            throw new CheckpointFailedException("copying checkpoint " + checkpoint + " to partner nodes failed, partner copies dropped"
                    + " (the VMs' own copies stay): " + e.getMessage(), e);
        }
        Map<String, String> placed = new LinkedHashMap<>();
        rooms.forEach((vm, r) -> placed.put(vm, r.partner().node()));
        listener.step("every VM of checkpoint " + checkpoint + " is in the memory of two nodes: " + placed);
        return new CheckpointStorage.PartnerReport(checkpoint, placed, Duration.between(started, clock.instant()));
    }

    /** One VM's copy, from its node to the partner: a held stream straight to the partner's agent, a shadow to a QEMU it starts. */
    private static void send(String checkpoint, AgentClient source, VmCheckpointStatus vm, Reserved r) throws AgentCallException {
        if (r.room().kind() == PartnerKind.STREAM) {
            source.replicate(checkpoint, new ReplicateRequest(vm.vm(), r.room().uri(), r.key(), r.partner().node()));
            return;
        }
        VmInfo info = null;
        for (VmInfo candidate : source.vms()) {
            if (candidate.name().equals(vm.vm())) {
                info = candidate;
            }
        }
        if (info == null || info.spec() == null) {
            throw new AgentCallException(io.mekha.agent.api.ErrorKind.CONFLICT, 0, "node " + source.node() + " no longer describes VM '"
                    + vm.vm() + "'", null);
        }
        var f = vm.figures();
        PartnerCopyInfo copy = r.partner().hostPartner(checkpoint, new PartnerShadowRequest(vm.vm(), source.node(), info.spec(),
                info.accelerator(), r.partner().base().getHost(),
                vm.frozenAt() != null ? vm.frozenAt() : f != null && f.stopAt() != null ? f.stopAt() : vm.stopIssuedAt(),
                vm.guestClockAtCut(), null, vm.cutDisk(), vm.stopLate(), r.key()));
        source.replicate(checkpoint, new ReplicateRequest(vm.vm(), copy.uri(), r.key(), r.partner().node()));
    }

    /** Waits until every partner holds its copies whole (a shadow QEMU loads after its source reported it sent). */
    private void awaitHeld(String checkpoint, Map<String, Reserved> rooms) throws CheckpointFailedException, InterruptedException {
        Map<AgentClient, List<String>> hosted = new LinkedHashMap<>();
        rooms.values().forEach(r -> hosted.computeIfAbsent(r.partner(), a -> new ArrayList<>()).add(r.vm()));
        Instant deadline = clock.instant().plus(LOAD_TIMEOUT);
        for (var entry : hosted.entrySet()) {
            while (true) {
                List<PartnerCopyInfo> copies;
                try {
                    copies = entry.getKey().partners(checkpoint).stream().filter(c -> entry.getValue().contains(c.vm())).toList();
                } catch (AgentCallException e) {
                    throw new CheckpointFailedException("node " + entry.getKey().node() + " does not say what it holds: " + e.getMessage(), e);
                }
                List<String> failed = copies.stream().filter(c -> c.state() == PartnerCopyState.FAILED).map(c -> c.vm() + ": " + c.error()).toList();
                if (!failed.isEmpty()) {
                    throw new CheckpointFailedException("node " + entry.getKey().node() + " could not load its partner copies: "
                            + String.join("; ", failed));
                }
                if (copies.size() == entry.getValue().size() && copies.stream().allMatch(c -> c.state() == PartnerCopyState.HELD)) {
                    break;
                }
                if (clock.instant().isAfter(deadline)) {
                    throw new CheckpointFailedException("partner copies on node " + entry.getKey().node() + " did not load in "
                            + LOAD_TIMEOUT.toMinutes() + " minutes");
                }
                Thread.sleep(50);
            }
        }
    }

    /**
     * Copies made again of VMs that a node's loss left in the memory of one node only ({@code holderByVm}: VM to the node
     * that still holds it): each held stream handed on from that node into another node's memory, where the nodes lend
     * room for it ({@link PartnerPlan}, the holder never chosen). Nothing any node holds already is let go: a copy that
     * fails frees only the room kept for it.
     *
     * @return VM to the node that now also holds it, and VM to why no second copy could be made
     */
    CheckpointStorage.Remade remake(String checkpoint, Map<String, String> holderByVm) throws InterruptedException {
        Map<String, AgentClient> byNode = byNode();
        Map<String, String> made = new LinkedHashMap<>();
        Map<String, String> failures = new LinkedHashMap<>();
        List<PartnerPlan.Vm> vms = new ArrayList<>();
        holderByVm.forEach((vm, holder) -> {
            AgentClient agent = byNode.get(holder);
            if (agent == null) {
                failures.put(vm, "no agent answers for node " + holder + ", which holds it");
                return;
            }
            try {
                vms.add(new PartnerPlan.Vm(vm, holder, sizeMiB(checkpoint, agent, vm)));
            } catch (AgentCallException | CheckpointFailedException e) {
                failures.put(vm, e.getMessage());
            }
        });
        Map<String, String> plan;
        try {
            // only a held stream is handed on (a shadow streams out once): nodes taking streams
            plan = vms.isEmpty() ? Map.of() : PartnerPlan.place(vms, lendingNodes(kind -> kind == PartnerKind.STREAM));
        } catch (CheckpointFailedException e) {
            vms.forEach(v -> failures.put(v.name(), e.getMessage()));
            return new CheckpointStorage.Remade(checkpoint, made, failures);
        }
        for (PartnerPlan.Vm v : vms) {
            AgentClient holder = byNode.get(v.node());
            AgentClient partner = byNode.get(plan.get(v.name()));
            String key = StreamKey.random();
            try {
                PartnerCopyInfo room = partner.reservePartner(checkpoint, new PartnerReservation(v.name(), holder.node(), v.memoryMiB(), key,
                        partner.base().getHost()));
                holder.replicate(checkpoint, new ReplicateRequest(v.name(), room.uri(), key, partner.node()));
                made.put(v.name(), partner.node());
            } catch (AgentCallException e) {
                failures.put(v.name(), "from node " + holder.node() + " to node " + partner.node() + ": " + e.getMessage());
                try {
                    partner.dropPartner(checkpoint, v.name());
                } catch (AgentCallException ignored) {
                    // the room kept for it expires by itself
                }
            }
            if (Thread.interrupted()) {
                throw new InterruptedException("copying level 0 again was interrupted");
            }
        }
        return new CheckpointStorage.Remade(checkpoint, made, failures);
    }

    /** The memory a copy of {@code vm} needs, from what {@code holder} holds: the stream it keeps for a partner, else the VM's RAM. */
    private static long sizeMiB(String checkpoint, AgentClient holder, String vm) throws AgentCallException, CheckpointFailedException {
        for (PartnerCopyInfo c : holder.partners(checkpoint)) {
            if (c.vm().equals(vm) && c.state() == PartnerCopyState.HELD && c.bytes() > 0) {
                return (c.bytes() + (1 << 20) - 1) >> 20;
            }
        }
        for (VmInfo info : holder.vms()) {
            if (info.name().equals(vm) && info.spec() != null && info.spec().memoryMiB() > 0) {
                return info.spec().memoryMiB();
            }
        }
        throw new CheckpointFailedException("node " + holder.node() + " does not say how large its copy of VM '" + vm + "' is");
    }

    /** Every node whose agent takes copies of the kinds {@code takes} accepts, with the memory it lends now. */
    private List<PartnerPlan.Node> lendingNodes(java.util.function.Predicate<PartnerKind> takes) {
        List<PartnerPlan.Node> nodes = new ArrayList<>();
        calls.parallel(agents, AgentClient::level0Room).forEach((agent, r) -> {
            Level0Room room = r.value();
            if (room != null && takes.test(room.partners())) {
                nodes.add(new PartnerPlan.Node(agent.node(), room.roomMiB(), room.copyOverheadMiB()));
            }
        });
        return nodes;
    }

    /** Lets go of the room kept and the copies held on {@code holders} for the checkpoint. */
    void drop(String checkpoint, List<AgentClient> holders) {
        calls.parallel(List.copyOf(holders), agent -> {
            agent.dropPartners(checkpoint);
            return Boolean.TRUE;
        });
    }

    private Map<String, AgentClient> byNode() {
        Map<String, AgentClient> byNode = new HashMap<>();
        agents.forEach(a -> byNode.put(a.node(), a));
        return byNode;
    }
}
