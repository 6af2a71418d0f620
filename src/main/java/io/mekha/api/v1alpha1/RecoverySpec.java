package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.ValidationRule;

/** What the operator does when a VM of the schedule's virtual cluster fails, and how often it may. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RecoverySpec {
    @JsonPropertyDescription("Manual (default): only checkpoints. Automatic: when a VM of the VC fails (its VirtualMachineInstance failed or"
            + " gone, its launcher pod gone, its node NotReady past nodeGracePeriod, KubeVirt starting it again from boot), abort any"
            + " checkpoint of the VC in flight and restore the whole VC from the newest checkpoint that is ready to use.")
    @Default("Manual")
    public RecoveryPolicy policy;

    @JsonPropertyDescription("At most this many automatic recoveries within window (default 3); past it recovery stops and says why.")
    @Min(1)
    @Max(100)
    public Integer maxRecoveries;

    @JsonPropertyDescription("The window maxRecoveries counts in (default 1h).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    @ValidationRule(value = MekhaApi.POSITIVE_DURATION_RULE, message = MekhaApi.POSITIVE_DURATION_MESSAGE)
    public String window;

    @JsonPropertyDescription("Wait after a recovery before the next may start, doubling with each one in the window, at most 10m (default 30s).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    public String backoff;

    @JsonPropertyDescription("How long a VM's node may be NotReady before the VM counts as failed (default 30s; the node controller itself"
            + " marks a node NotReady some 40s after its kubelet stops reporting).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    public String nodeGracePeriod;
}
