package io.mekha.storage;

import java.util.Locale;

/**
 * Where a checkpoint lives, fastest first. A restart uses the fastest level that holds a
 * complete, verified copy and falls back to the next.
 */
public enum StorageLevel {
    /** Host memory: the paused shadow QEMUs. Restart is a {@code cont}; lost with the node. */
    L0("memory (shadow VMs)"),
    /** A directory on each VM's own node: survives a QEMU or VM crash and an agent restart. */
    L1("node-local disk"),
    /** Shared storage every node reaches (a mounted filesystem or an S3-compatible store): survives the loss of a node. */
    L2("shared storage");

    private final String description;

    StorageLevel(String description) {
        this.description = description;
    }

    public String description() {
        return description;
    }

    public static StorageLevel parse(String text) {
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("unknown storage level '" + text + "': use L0 (memory), L1 (node-local disk) or L2 (shared)");
        }
    }
}
