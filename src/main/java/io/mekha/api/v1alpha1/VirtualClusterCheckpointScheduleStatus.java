package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

/** When a schedule last ran and will run next, and its newest good checkpoint. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class VirtualClusterCheckpointScheduleStatus {
    public Long observedGeneration;
    public List<Condition> conditions = new ArrayList<>();
    @JsonPropertyDescription("The due instant of the newest checkpoint created (RFC 3339).")
    public String lastScheduleTime;
    @JsonPropertyDescription("When the next checkpoint is due (RFC 3339).")
    public String nextScheduleTime;
    @JsonPropertyDescription("Name of the newest checkpoint created.")
    public String lastCheckpoint;
    @JsonPropertyDescription("Name of the newest checkpoint that Succeeded.")
    public String lastSuccessfulCheckpoint;
    public String lastSuccessfulTime;
    @JsonPropertyDescription("Checkpoints of this schedule that exist now.")
    public Integer checkpoints;
    @JsonPropertyDescription("Automatic recovery, when spec.recovery.policy is Automatic.")
    public RecoveryStatus recovery;
}
