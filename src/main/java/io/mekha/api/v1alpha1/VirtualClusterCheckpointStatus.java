package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

/**
 * What a checkpoint has done. The protocol's progress lives here (stage, the checkpoint's id on the
 * agents, the rendezvous instants), so an operator that restarts picks it up from here alone.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class VirtualClusterCheckpointStatus {
    @JsonPropertyDescription("Pending, InProgress, Succeeded or Failed.")
    public Phase phase;
    @JsonPropertyDescription("Step of the protocol: Resolving, Preparing, LiveStage, Suspending, Captured, Flushing, Done.")
    public String stage;
    @JsonPropertyDescription("True once the checkpoint can be restored from.")
    public Boolean readyToUse;
    @JsonPropertyDescription("The checkpoint's id on the agents and in stored manifests.")
    public String checkpointId;
    @JsonPropertyDescription("Generation of the spec this status describes.")
    public Long observedGeneration;
    @JsonPropertyDescription("The spec this checkpoint was taken with, copied when it started: restores and deletion use it, never a later edit.")
    public VirtualClusterCheckpointSpec takenWith;
    public List<Condition> conditions = new ArrayList<>();
    @JsonPropertyDescription("The VMs of the checkpoint.")
    public List<VmProgress> vms = new ArrayList<>();
    @JsonPropertyDescription("The rendezvous instant every VM stopped at (Ts).")
    public String suspendAt;
    @JsonPropertyDescription("The rendezvous instant every VM resumed at (Tr).")
    public String resumeAt;
    @JsonPropertyDescription("Spread of the VMs' actual stop instants, e.g. 1.2ms.")
    public String suspendSkew;
    @JsonPropertyDescription("Spread of the VMs' actual resume instants.")
    public String resumeSkew;
    @JsonPropertyDescription("Longest pause of any VM.")
    public String maxPausedTime;
    @JsonPropertyDescription("Total bytes of VM state captured.")
    public Long totalBytes;
    @JsonPropertyDescription("Levels holding the whole checkpoint, fastest first.")
    public List<LevelName> levels = new ArrayList<>();
    @JsonPropertyDescription("Where each VM's memory copy (L0) lives: its own node's, a partner node's.")
    public Level0Status level0;
    @JsonPropertyDescription("CSI snapshots of the VMs' PVC-backed disks, taken at the cut; a restore makes new PVCs from them.")
    public List<VolumeSnapshotRef> volumeSnapshots;
    @JsonPropertyDescription("From the cut until the durable level held every VM.")
    public String timeToDurable;
    @JsonPropertyDescription("When the protocol started (RFC 3339).")
    public String startedAt;
    @JsonPropertyDescription("When the checkpoint reached its final phase (RFC 3339).")
    public String completedAt;
}
