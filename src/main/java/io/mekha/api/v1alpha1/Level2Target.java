package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.ValidationRule;

/** Shared storage (level 2): a path every agent has mounted, or an S3-compatible bucket. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(value = "has(self.path) != has(self.s3)", message = "set exactly one of level2.path and level2.s3")
public class Level2Target {
    @JsonPropertyDescription("Absolute path of a directory every agent has mounted (a ReadWriteMany volume, NFS).")
    @io.fabric8.generator.annotation.Pattern("^/.*")
    public String path;

    @JsonPropertyDescription("An S3-compatible bucket.")
    public S3Target s3;
}
