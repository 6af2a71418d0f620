package io.mekha.api.v1alpha1;

/**
 * What deleting a checkpoint does to its data. Delete: every level is removed. Retain: the stored
 * copies (L1, L2) stay where they are, for a person to restore from or remove; the memory copy (L0)
 * is always released, since nothing could name it once the object is gone.
 */
public enum DeletionPolicy {
    Delete, Retain
}
