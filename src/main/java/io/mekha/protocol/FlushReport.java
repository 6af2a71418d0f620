package io.mekha.protocol;

import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * What a flush did.
 *
 * @param published each level that now holds the whole checkpoint, with its manifest
 * @param failures each level that does not, with why
 * @param allDurableAt when the durable level's manifest was published (null: it was not)
 * @param peakWriters the most writes in flight at once, per target ("L1 node n1", "L2")
 * @param level0Released whether the shadows were released
 */
public record FlushReport(String checkpoint, List<Write> writes, Map<StorageLevel, CheckpointManifest> published,
                          Map<StorageLevel, String> failures, Instant startedAt, Instant allDurableAt, Map<String, Integer> peakWriters,
                          boolean level0Released) {

    /**
     * One VM's write to one level.
     *
     * @param queued from the flush's start to this write's start (waiting for a writer slot or for its L1 copy)
     * @param took the write itself, including reading it back to verify
     * @param node the node that wrote it: the VM's, its partner's when the VM's copy went there, or when the write failed on
     *             the VM's node and was done again from the partner's copy
     * @param redoneAfter why the write was done again from a partner's copy (null: done at the first try)
     */
    public record Write(String vm, String node, StorageLevel level, StorageLevel from, long bytes, long rawBytes, Duration queued,
                        Duration took, String error, String redoneAfter) {}

    /** The writes done again from a partner node's copy after they failed on the VM's own node. */
    public List<Write> redone() {
        return writes.stream().filter(w -> w.redoneAfter() != null).toList();
    }

    public boolean durable() {
        return allDurableAt != null;
    }

    public Duration timeToDurable() {
        return allDurableAt == null ? null : Duration.between(startedAt, allDurableAt);
    }
}
