package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.ValidationRule;

/** Which of a schedule's checkpoints to keep; the rest are deleted (their data per their deletion policy). */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class Retention {
    @JsonPropertyDescription("Keep the newest N successful checkpoints.")
    @Min(1)
    @Max(1000)
    public Integer keepLast;

    @JsonPropertyDescription("Delete successful checkpoints older than this (the newest successful one is always kept).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    @ValidationRule(value = MekhaApi.POSITIVE_DURATION_RULE, message = MekhaApi.POSITIVE_DURATION_MESSAGE)
    public String maxAge;

    @JsonPropertyDescription("Failed checkpoints to keep for inspection (default 1).")
    @Min(0)
    @Max(100)
    public Integer failedHistoryLimit;
}
