package io.mekha.protocol;

import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.time.Duration;
import java.util.List;

/**
 * How a checkpoint moves from memory to slower levels.
 *
 * @param levels L1 and/or L2, in the order they are written (L2 copies from L1 when both are asked for)
 * @param level2 the shared target for L2
 * @param level1WritersPerNode how many VMs of one node write to its local disk at once
 * @param level2Writers how many VMs, across all nodes, write to the shared target at once
 * @param writeTimeout the target's timeout for one VM's write: a write that takes longer fails
 * @param order which VMs go first when writers are limited
 * @param level0 what happens to the shadows once the checkpoint is durable
 */
public record FlushPlan(List<StorageLevel> levels, StorageTarget level2, String compression, int level1WritersPerNode, int level2Writers,
                        Duration writeTimeout, Order order, Level0Policy level0) {

    public enum Order {
        /** Smallest state first: the most VMs durable soonest, and memory released earliest where the policy releases. */
        SMALLEST_FIRST,
        /** Largest first: the longest write starts first, which can shorten the makespan with few writers. */
        LARGEST_FIRST,
        /** In the order the checkpoint lists its VMs. */
        AS_LISTED
    }

    public enum Level0Policy {
        /** Keep the shadows (restart in milliseconds); the caller releases older checkpoints' shadows. */
        KEEP,
        /** Release every shadow once the slowest requested level holds the whole checkpoint. */
        RELEASE_WHEN_DURABLE
    }

    public FlushPlan {
        levels = List.copyOf(levels);
        if (levels.isEmpty() || levels.contains(StorageLevel.L0)) {
            throw new IllegalArgumentException("flush to L1 and/or L2 (L0, memory, is where a checkpoint starts)");
        }
        if (levels.contains(StorageLevel.L2) && level2 == null) {
            throw new IllegalArgumentException("flushing to L2 needs a level-2 target (a shared directory or an S3 bucket)");
        }
        if (level2 != null) {
            level2.validate();
        }
        if (level1WritersPerNode < 1 || level2Writers < 1) {
            throw new IllegalArgumentException("writer limits must be at least 1");
        }
        if (writeTimeout == null || writeTimeout.isNegative() || writeTimeout.isZero()) {
            throw new IllegalArgumentException("the write timeout must be positive");
        }
    }

    public static FlushPlan level1() {
        return new FlushPlan(List.of(StorageLevel.L1), null, "none", 1, 2, Duration.ofMinutes(10), Order.SMALLEST_FIRST, Level0Policy.KEEP);
    }

    public FlushPlan withLevels(List<StorageLevel> newLevels, StorageTarget target) {
        return new FlushPlan(newLevels, target, compression, level1WritersPerNode, level2Writers, writeTimeout, order, level0);
    }

    public FlushPlan withWriters(int perNode, int shared) {
        return new FlushPlan(levels, level2, compression, perNode, shared, writeTimeout, order, level0);
    }

    public FlushPlan withCompression(String newCompression) {
        return new FlushPlan(levels, level2, newCompression, level1WritersPerNode, level2Writers, writeTimeout, order, level0);
    }

    public FlushPlan withWriteTimeout(Duration timeout) {
        return new FlushPlan(levels, level2, compression, level1WritersPerNode, level2Writers, timeout, order, level0);
    }

    public FlushPlan withOrder(Order newOrder) {
        return new FlushPlan(levels, level2, compression, level1WritersPerNode, level2Writers, writeTimeout, newOrder, level0);
    }

    public FlushPlan withLevel0(Level0Policy policy) {
        return new FlushPlan(levels, level2, compression, level1WritersPerNode, level2Writers, writeTimeout, order, policy);
    }

    /** The slowest level asked for: the checkpoint is durable once it holds it whole. */
    public StorageLevel durableLevel() {
        return levels.contains(StorageLevel.L2) ? StorageLevel.L2 : StorageLevel.L1;
    }
}
