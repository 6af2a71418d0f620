package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** What a restore has done. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class VirtualClusterRestoreStatus {
    public Phase phase;
    public Long observedGeneration;
    public List<Condition> conditions = new ArrayList<>();
    @JsonPropertyDescription("The level the VMs were restarted from.")
    public LevelName restoredFrom;
    @JsonPropertyDescription("Faster levels passed over, with why.")
    public Map<String, String> skippedLevels;
    @JsonPropertyDescription("The rendezvous instant every VM resumed at.")
    public String resumeAt;
    @JsonPropertyDescription("Spread of the VMs' actual resume instants.")
    public String resumeSkew;
    public List<VmRestoreResult> vms = new ArrayList<>();
    public String startedAt;
    public String completedAt;
    @JsonPropertyDescription("How many times the restore was started: more than 1 when an operator restart interrupted it and"
            + " the next operator started it again.")
    public Integer attempts;
}
