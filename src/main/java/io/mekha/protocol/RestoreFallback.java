package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.AgentDtos.StoredVmResult;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.model.TimePolicy;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A VC's restart from the fastest storage level that holds its checkpoint whole and verified:
 * memory first, then node-local disk, then shared storage, each level tried and, when it cannot
 * serve, passed over with the reason.
 */
final class RestoreFallback {
    private final List<AgentClient> agents;
    private final AgentCalls calls;
    private final Level0Placement placement;
    private final RestartProtocol restarts;

    RestoreFallback(List<AgentClient> agents, AgentCalls calls, Level0Placement placement, RestartProtocol restarts) {
        this.agents = agents;
        this.calls = calls;
        this.placement = placement;
        this.restarts = restarts;
    }


    /**
     * Restarts a VC from the fastest level (from {@code preferred} on) that holds checkpoint
     * {@code checkpoint} whole and verified, falling back level by level, telling {@code placed}
     * where each VM restarts once a level is chosen. Every stream is read and checked against its
     * manifest before any VM is started.
     */
    CheckpointStorage.RestoreReport restore(String vc, String checkpoint, StorageLevel preferred, StorageTarget level2, TimePolicy policy,
                          Duration slewPeriod, ProtocolListener listener, CheckpointStorage.Placed placed)
            throws CheckpointFailedException, InterruptedException {
        Map<StorageLevel, String> skipped = new LinkedHashMap<>();
        StorageLevel first = preferred == null ? StorageLevel.L0 : preferred;
        for (StorageLevel level : StorageLevel.values()) {
            if (level.ordinal() < first.ordinal()) {
                continue;
            }
            if (level == StorageLevel.L2 && level2 == null) {
                skipped.put(level, "no level-2 target configured");
                continue;
            }
            try {
                if (level == StorageLevel.L0) {
                    Map<String, AgentClient> inMemory;
                    try {
                        inMemory = placement.place(checkpoint);
                    } catch (CheckpointFailedException e) {
                        skipped.put(level, e.getMessage());
                        continue;
                    }
                    Map<String, String> nodes = new LinkedHashMap<>();
                    inMemory.forEach((vm, agent) -> nodes.put(vm, agent.node()));
                    placed.at(level, nodes);
                    return new CheckpointStorage.RestoreReport(level, skipped, restarts.fromMemory(checkpoint, policy, slewPeriod, listener));
                }
                Map<AgentClient, List<String>> placement = new LinkedHashMap<>();
                CheckpointManifest manifest = findManifest(vc, checkpoint, level, level2, placement);
                listener.step("verifying checkpoint " + checkpoint + " at " + level + " (" + level.description() + ")");
                String problem = verifyAll(level, level2, manifest, placement);
                if (problem != null) {
                    skipped.put(level, problem);
                    listener.step(level + " cannot serve: " + problem);
                    continue;
                }
                Map<String, String> nodes = new LinkedHashMap<>();
                placement.forEach((agent, vms) -> vms.forEach(vm -> nodes.put(vm, agent.node())));
                placed.at(level, nodes);
                Map<AgentClient, AgentCalls.Result<List<StoredVmResult>>> loads = calls.parallel(List.copyOf(placement.keySet()),
                        agent -> agent.loadStored(new StoredVmsRequest(level, level2, manifest, placement.get(agent))));
                List<String> loadErrors = new ArrayList<>();
                loads.forEach((agent, r) -> {
                    if (r.error() != null) {
                        loadErrors.add(r.error().getMessage());
                    }
                });
                if (!loadErrors.isEmpty()) {
                    calls.parallel(List.copyOf(placement.keySet()), agent -> {
                        agent.dropLoaded(checkpoint);
                        return Boolean.TRUE;
                    });
                    skipped.put(level, String.join("; ", loadErrors));
                    continue;
                }
                return new CheckpointStorage.RestoreReport(level, skipped,
                        restarts.loaded(checkpoint, List.copyOf(placement.keySet()), level, policy, slewPeriod, listener));
            } catch (NoCopy e) {
                skipped.put(level, e.getMessage());
            }
        }
        throw new CheckpointFailedException("cannot restart " + vc + " from checkpoint " + checkpoint + ": no level holds a complete, verified copy ("
                + describe(skipped) + "); no VM was started");
    }

    private static final class NoCopy extends Exception {
        NoCopy(String message) {
            super(message);
        }
    }


    /** Finds the level's manifest and decides which agent restarts which VM. */
    private CheckpointManifest findManifest(String vc, String checkpoint, StorageLevel level, StorageTarget level2,
                                            Map<AgentClient, List<String>> placement) throws NoCopy {
        StoredRequest request = new StoredRequest(level, level == StorageLevel.L2 ? level2 : null, vc, checkpoint);
        CheckpointManifest manifest = null;
        List<String> problems = new ArrayList<>();
        List<AgentClient> askers = level == StorageLevel.L2 ? agents.subList(0, Math.min(1, agents.size())) : agents;
        for (var entry : calls.parallel(askers, agent -> agent.readManifest(request)).entrySet()) {
            AgentCalls.Result<CheckpointManifest> r = entry.getValue();
            if (r.error() == null) {
                manifest = manifest == null ? r.value() : manifest;
            } else if (!r.error().notFound()) {
                problems.add(r.error().getMessage());
            }
        }
        if (manifest == null) {
            throw new NoCopy(problems.isEmpty() ? "no manifest for checkpoint " + checkpoint + " of " + vc + (level == StorageLevel.L1
                    ? " on any node" : " at " + level2.describe()) : String.join("; ", problems));
        }
        Map<String, AgentClient> byNode = new HashMap<>();
        agents.forEach(a -> byNode.put(a.node(), a));
        int next = 0;
        for (CheckpointManifest.VmEntry vm : manifest.vms()) {
            AgentClient agent = byNode.get(vm.node());
            if (agent == null && level == StorageLevel.L1) {
                throw new NoCopy("VM '" + vm.name() + "' was saved on node " + vm.node() + ", which has no agent now (level 1 is node-local)");
            }
            if (agent == null) {
                // its node is gone: shared storage lets another node take the VM
                agent = agents.get(next++ % agents.size());
            }
            placement.computeIfAbsent(agent, a -> new ArrayList<>()).add(vm.name());
        }
        return manifest;
    }

    private String verifyAll(StorageLevel level, StorageTarget level2, CheckpointManifest manifest, Map<AgentClient, List<String>> placement) {
        List<String> problems = new ArrayList<>();
        calls.parallel(List.copyOf(placement.keySet()), agent -> agent.verifyStored(new StoredVmsRequest(level,
                level == StorageLevel.L2 ? level2 : null, manifest, placement.get(agent)))).forEach((agent, r) -> {
            if (r.error() != null) {
                problems.add(r.error().getMessage());
            } else {
                r.value().stream().filter(v -> !v.ok()).forEach(v -> problems.add(v.error()));
            }
        });
        return problems.isEmpty() ? null : String.join("; ", problems);
    }

    private static String describe(Map<StorageLevel, String> skipped) {
        StringBuilder s = new StringBuilder();
        skipped.forEach((level, why) -> s.append(s.length() == 0 ? "" : "; ").append(level).append(": ").append(why));
        return s.toString();
    }


}
