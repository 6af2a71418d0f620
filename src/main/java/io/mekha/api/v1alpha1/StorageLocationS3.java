package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;

/** An S3-compatible bucket of a storage location; its credentials are the admin's Secret, never the tenant's. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class StorageLocationS3 {
    @Required
    @JsonPropertyDescription("Bucket name.")
    public String bucket;

    @JsonPropertyDescription("Key prefix inside the bucket.")
    public String prefix;

    @JsonPropertyDescription("Service URL; unset: AWS for the region.")
    public String endpoint;

    @JsonPropertyDescription("Region (any name, such as us-east-1, for stores that ignore it).")
    public String region;

    @JsonPropertyDescription("Address the bucket in the path (most non-AWS stores need this).")
    public Boolean pathStyle;

    @JsonPropertyDescription("Longest one call to the store may take, retries included (default 2m): a store that stops answering fails the flush after it, nothing published.")
    @io.fabric8.generator.annotation.Pattern(MekhaApi.DURATION_PATTERN)
    @io.fabric8.generator.annotation.ValidationRule(value = MekhaApi.POSITIVE_DURATION_RULE, message = MekhaApi.POSITIVE_DURATION_MESSAGE)
    public String timeout;

    @Required
    @JsonPropertyDescription("Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, in the operator's namespace.")
    public String credentialsSecret;
}
