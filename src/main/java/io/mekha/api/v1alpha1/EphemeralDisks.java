package io.mekha.api.v1alpha1;

/**
 * What a checkpoint does with VM disks that live only in the virt-launcher pod (containerDisk's
 * writable overlay, ephemeral, emptyDisk): Mekha does not capture them yet. Refuse (default): a VM
 * with such a disk is not checkpointed, and the refusal names the disk. Discard: checkpoint anyway;
 * a restore starts those disks from their image again, losing what the guest wrote to them, which
 * suits guests that keep their writes in memory or on PVCs (the guest's cached view of such a disk
 * is not reverted with it).
 */
public enum EphemeralDisks {
    Refuse, Discard
}
