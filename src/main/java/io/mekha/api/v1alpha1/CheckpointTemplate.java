package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;
import java.util.Map;

/** The checkpoint a schedule creates each time. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointTemplate {
    @JsonPropertyDescription("Labels put on each checkpoint.")
    public Map<String, String> labels;

    @Required
    public VirtualClusterCheckpointSpec spec;
}
