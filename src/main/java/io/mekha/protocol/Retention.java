package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.StoredCheckpoint;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/** Where a VC's checkpoints are held whole, and removing them: from one level (never the last copy by accident) or everywhere. */
final class Retention {
    private final List<AgentClient> agents;
    private final AgentCalls calls;
    private final Level0Placement placement;
    private final Level0Release releaseLevel0;

    Retention(List<AgentClient> agents, AgentCalls calls, Level0Placement placement, Level0Release releaseLevel0) {
        this.agents = agents;
        this.calls = calls;
        this.placement = placement;
        this.releaseLevel0 = releaseLevel0;
    }

    /**
     * Every checkpoint of {@code vc} found at L1 or L2, plus {@code known} (checkpoints the caller took, with
     * when: those only in memory have no manifest to say), with the levels holding each whole, oldest first.
     */
    List<CheckpointStorage.Holdings> holdings(String vc, StorageTarget level2, Map<String, Instant> known) {
        Map<String, Instant> created = new TreeMap<>(known);
        Map<String, List<StorageLevel>> levels = new HashMap<>();
        Map<String, Integer> l1Nodes = new HashMap<>();
        Map<String, List<String>> l1Need = new HashMap<>();
        calls.parallel(agents, agent -> agent.listStored(new StoredRequest(StorageLevel.L1, null, vc, null))).forEach((agent, r) -> {
            if (r.error() != null) {
                return;
            }
            for (StoredCheckpoint c : r.value()) {
                created.putIfAbsent(c.checkpoint(), null);
                if (c.manifest() != null) {
                    created.putIfAbsent(c.checkpoint(), c.manifest().createdAt());
                    l1Nodes.merge(c.checkpoint(), 1, Integer::sum);
                    l1Need.put(c.checkpoint(), c.manifest().vms().stream().map(CheckpointManifest.VmEntry::node).distinct().toList());
                }
            }
        });
        l1Need.forEach((id, nodes) -> {
            if (l1Nodes.getOrDefault(id, 0) >= nodes.size()) {
                levels.computeIfAbsent(id, k -> new ArrayList<>()).add(StorageLevel.L1);
            }
        });
        if (level2 != null && !agents.isEmpty()) {
            calls.parallel(List.of(agents.get(0)), agent -> agent.listStored(new StoredRequest(StorageLevel.L2, level2, vc, null)))
                    .forEach((agent, r) -> {
                        if (r.error() == null) {
                            for (StoredCheckpoint c : r.value()) {
                                created.putIfAbsent(c.checkpoint(), null);
                                if (c.manifest() != null) {
                                    created.putIfAbsent(c.checkpoint(), c.manifest().createdAt());
                                    levels.computeIfAbsent(c.checkpoint(), k -> new ArrayList<>()).add(StorageLevel.L2);
                                }
                            }
                        }
                    });
        }
        List<CheckpointStorage.Holdings> result = new ArrayList<>();
        for (var e : created.entrySet()) {
            List<StorageLevel> complete = new ArrayList<>();
            if (placement.problem(e.getKey()) == null) {
                complete.add(StorageLevel.L0);
            }
            complete.addAll(levels.getOrDefault(e.getKey(), List.of()));
            result.add(new CheckpointStorage.Holdings(e.getKey(), e.getValue(), complete));
        }
        result.sort(Comparator.comparing((CheckpointStorage.Holdings h) -> h.createdAt() == null ? Instant.MIN : h.createdAt()).thenComparing(CheckpointStorage.Holdings::checkpoint));
        return result;
    }

    /**
     * Removes a checkpoint from one level. Refuses to remove the last complete copy unless
     * {@code force}: a checkpoint is never lost by accident.
     */
    void release(String vc, String checkpoint, StorageLevel level, StorageTarget level2, boolean force)
            throws CheckpointFailedException {
        Optional<CheckpointStorage.Holdings> held = holdings(vc, level2, Map.of(checkpoint, Instant.EPOCH)).stream().filter(h -> h.checkpoint().equals(checkpoint)).findFirst();
        List<StorageLevel> complete = held.map(CheckpointStorage.Holdings::complete).orElse(List.of());
        if (!force && complete.equals(List.of(level))) {
            throw new CheckpointFailedException("checkpoint " + checkpoint + " is held whole only at " + level + " (" + level.description()
                    + "); releasing it would lose the checkpoint. Flush it to another level first, or delete it on purpose");
        }
        switch (level) {
            case L0 -> releaseLevel0.release(checkpoint);
            case L1 -> calls.parallel(agents, agent -> {
                agent.deleteStored(new StoredRequest(StorageLevel.L1, null, vc, checkpoint));
                return Boolean.TRUE;
            });
            case L2 -> {
                if (level2 == null) {
                    throw new CheckpointFailedException("releasing L2 needs the level-2 target");
                }
                AgentCalls.requireAll(calls.parallel(List.of(agents.get(0)), agent -> {
                    agent.deleteStored(new StoredRequest(StorageLevel.L2, level2, vc, checkpoint));
                    return Boolean.TRUE;
                }), "deleting from L2");
            }
        }
    }

    /** Deletes a checkpoint at every level. */
    void delete(String vc, String checkpoint, StorageTarget level2) throws CheckpointFailedException {
        for (StorageLevel level : StorageLevel.values()) {
            if (level != StorageLevel.L2 || level2 != null) {
                release(vc, checkpoint, level, level2, true);
            }
        }
    }

    /** Keeps the newest {@code keep} checkpoints of {@code vc} (by creation time) and deletes the rest everywhere. */
    List<String> keepNewest(String vc, int keep, StorageTarget level2, Map<String, Instant> known) throws CheckpointFailedException {
        if (keep < 1) {
            throw new CheckpointFailedException("keep at least 1 checkpoint (asked to keep " + keep + ")");
        }
        List<CheckpointStorage.Holdings> all = holdings(vc, level2, known);
        List<String> deleted = new ArrayList<>();
        for (int i = 0; i < all.size() - keep; i++) {
            delete(vc, all.get(i).checkpoint(), level2);
            deleted.add(all.get(i).checkpoint());
        }
        return deleted;
    }


}
