package io.mekha.api.v1alpha1;

/**
 * Where a checkpoint's level-0 (memory) copy of each VM lives. Local: on the VM's own node only (survives a VM's or its
 * QEMU's crash). Partner: on another node only, once copied there (survives the loss of the VM's node; frees the VM's
 * node's memory). Both: on the VM's node and on another (a QEMU crash restarts from the VM's node, a lost node from the
 * partner). A partner is never the VM's own node, and holds copies only within the memory its agent lends.
 */
public enum Level0Placement {
    Local, Partner, Both
}
