package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.ValidationRule;

/** Bounds of the live (pre-copy) stage, after KubeVirt's live-migration knobs. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(value = "duration(has(self.globalBound) ? self.globalBound : '60s') >= duration(has(self.maxPerVm) ? self.maxPerVm : '30s')",
        message = "globalBound must be at least maxPerVm (defaults: maxPerVm 30s, globalBound 60s): raise globalBound or lower maxPerVm")
public class LiveStage {
    @JsonPropertyDescription("Longest live stage of one VM before it is ready to stop (default 30s).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    @ValidationRule(value = MekhaApi.POSITIVE_DURATION_RULE, message = MekhaApi.POSITIVE_DURATION_MESSAGE)
    public String maxPerVm;

    @JsonPropertyDescription("Longest live stage of the whole virtual cluster: past it every VM stops at the next rendezvous (default 60s).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    @ValidationRule(value = MekhaApi.POSITIVE_DURATION_RULE, message = MekhaApi.POSITIVE_DURATION_MESSAGE)
    public String globalBound;

    @JsonPropertyDescription("Migration bandwidth per VM in bytes per second; unset: unlimited.")
    @io.fabric8.generator.annotation.Min(1)
    public Long bandwidthPerVm;
}
