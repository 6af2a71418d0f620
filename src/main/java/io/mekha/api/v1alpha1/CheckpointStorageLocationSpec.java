package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.ValidationRule;
import java.util.List;

/** A level-2 target and who may use it. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(value = "has(self.path) != has(self.s3)", message = "set exactly one of path and s3")
public class CheckpointStorageLocationSpec {
    @JsonPropertyDescription("Absolute path of a directory every agent has mounted (a ReadWriteMany volume, NFS), as the agents see it.")
    @io.fabric8.generator.annotation.Pattern("^/.*")
    public String path;

    @JsonPropertyDescription("An S3-compatible bucket.")
    public StorageLocationS3 s3;

    @JsonPropertyDescription("Namespaces whose checkpoints may use this location; unset: every namespace.")
    public List<String> namespaces;
}
