package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** Where the checkpoint's memory copy (level 0) of each VM lives. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class Level0Spec {
    @JsonPropertyDescription("Local (default): on each VM's own node. Partner: on another node only (survives the loss of the VM's node)."
            + " Both: on the VM's node and on another. Partner and Both need two nodes with Mekha agents and are refused before the cut"
            + " when the other nodes do not lend the memory.")
    public Level0Placement placement;
}
