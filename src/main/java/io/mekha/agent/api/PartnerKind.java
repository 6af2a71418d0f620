package io.mekha.agent.api;

/** What a node holds of another node's VM when it is that VM's level-0 partner. */
public enum PartnerKind {
    /** No copies of other nodes' VMs here. */
    NONE,
    /** A paused QEMU of the VM's own machine, loaded over QEMU's TLS migration (the local runtime: nodes share the images). */
    SHADOW,
    /**
     * The VM's migration stream, handed over by its node's agent over the agents' mutual TLS and held in the level-0
     * tmpfs (KubeVirt: a restart feeds it to the restored VMI's QEMU, on this node).
     */
    STREAM
}
