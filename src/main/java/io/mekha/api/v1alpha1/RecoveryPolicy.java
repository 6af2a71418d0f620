package io.mekha.api.v1alpha1;

/**
 * Whether the operator restores a schedule's virtual cluster by itself when one of its VMs fails. Manual: it only
 * checkpoints; a person applies a VirtualClusterRestore. Automatic: it watches the VMs and restores the whole VC from
 * the newest checkpoint that is ready to use.
 */
public enum RecoveryPolicy {
    Manual, Automatic
}
