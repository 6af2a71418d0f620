package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** One in-memory copy of one VM of a checkpoint: on which node, and whether it is the VM's own node's or a partner's. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class Level0Holder {
    @JsonPropertyDescription("The VM (VirtualMachineInstance name).")
    public String vm;
    @JsonPropertyDescription("The node whose Mekha agent holds the copy in memory.")
    public String node;
    @JsonPropertyDescription("Own: the VM's own node's copy. Partner: a copy held by another node, which survives the loss of the VM's node.")
    public String role;

    public Level0Holder() {}

    public Level0Holder(String vm, String node, String role) {
        this.vm = vm;
        this.node = node;
        this.role = role;
    }
}
