package io.mekha.api.v1alpha1;

import io.mekha.storage.StorageLevel;

/** A storage level: L0 memory (shadows), L1 node-local disk, L2 shared storage. */
public enum LevelName {
    L0, L1, L2;

    public StorageLevel toLevel() {
        return StorageLevel.valueOf(name());
    }
}
