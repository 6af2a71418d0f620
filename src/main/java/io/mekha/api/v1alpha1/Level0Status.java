package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.ArrayList;
import java.util.List;

/** Where the checkpoint's memory copies (level 0) live now. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class Level0Status {
    @JsonPropertyDescription("The placement asked for: Local, Partner or Both.")
    public Level0Placement placement;
    @JsonPropertyDescription("Every VM's copies held in memory, by node. A restore from L0 takes the VM's own node's copy, else a partner's.")
    public List<Level0Holder> copies = new ArrayList<>();
}
