package io.mekha.api.v1alpha1;

/**
 * What a checkpoint does with VM disks Mekha cannot cut with the VM. On KubeVirt, Mekha cuts
 * PVC-backed disks (persistentVolumeClaim, dataVolume) with CSI snapshots and has the agent copy
 * one disk per VM that lives only in the virt-launcher pod (a containerDisk's writable overlay,
 * ephemeral, emptyDisk); a hostDisk (a file on one node) is not captured. Refuse (default): such a
 * VM is not checkpointed, and the refusal names the disk. Discard: checkpoint anyway; a restore
 * finds such a disk as it is then, not as it was at the cut (for disks the guest does not write).
 */
public enum UncapturedDisks {
    Refuse, Discard
}
