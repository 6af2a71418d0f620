package io.mekha.agent;

import io.mekha.storage.CheckpointStore;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.nio.file.Path;

/** Where a level's copies go from this node: L1 is always this node's own directory; L2 is what the request names (checked). */
final class StorageTargets {
    private final Path level1;

    StorageTargets(Path level1) {
        this.level1 = level1;
    }

    Path level1() {
        return level1;
    }

    StorageTarget resolve(StorageLevel level, StorageTarget target) throws AgentException {
        if (level == null || level == StorageLevel.L0) {
            throw AgentException.invalid("name a storage level to use: L1 (this node's disk) or L2 (shared storage)");
        }
        if (level == StorageLevel.L1) {
            return new StorageTarget.Filesystem(level1);
        }
        if (target == null) {
            throw AgentException.invalid("level L2 needs a 'target': {kind: filesystem, path: ...} or {kind: s3, bucket: ..., region: ...}");
        }
        try {
            target.validate();
        } catch (IllegalArgumentException e) {
            throw AgentException.invalid("level L2 target: " + e.getMessage());
        }
        return target;
    }

    CheckpointStore open(StorageLevel level, StorageTarget target) throws AgentException {
        return CheckpointStore.open(resolve(level, target));
    }
}
