package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;

/** Shared storage (level 2): one of the CheckpointStorageLocations a cluster admin defined. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class Level2Target {
    @Required
    @JsonPropertyDescription("Name of a CheckpointStorageLocation (cluster-scoped, defined by an admin) that allows this namespace.")
    @io.fabric8.generator.annotation.Pattern("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    public String location;
}
