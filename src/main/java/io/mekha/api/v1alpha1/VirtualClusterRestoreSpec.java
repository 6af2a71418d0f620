package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

/** Which checkpoint to restart the virtual cluster from, and how. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class VirtualClusterRestoreSpec {
    @Required
    @JsonPropertyDescription("Name of a VirtualClusterCheckpoint in this namespace that is readyToUse.")
    @Pattern(MekhaApi.NAME_PATTERN)
    @io.fabric8.generator.annotation.Size(max = 253)
    public String checkpointName;

    @JsonPropertyDescription("Fastest level to try (default L0); slower levels are tried when it holds no complete, verified copy.")
    public LevelName preferredLevel;

    @JsonPropertyDescription("Guest clock policy for this restart; unset: the checkpoint's.")
    public TimePolicyName timePolicy;

    @JsonPropertyDescription("For the Slew policy: how long guests take to catch up with host time (default 60s).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    @ValidationRule(value = MekhaApi.POSITIVE_DURATION_RULE, message = MekhaApi.POSITIVE_DURATION_MESSAGE)
    public String slewPeriod;

    @JsonPropertyDescription("How long the restore may take, from creation, before it is Failed (default 5m).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    @ValidationRule(value = MekhaApi.POSITIVE_DURATION_RULE, message = MekhaApi.POSITIVE_DURATION_MESSAGE)
    public String failureDeadline;
}
