package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.api.model.LabelSelector;
import java.util.List;

/** What to checkpoint and how: the VMs, the transfer, the storage levels, the time policy, the deadline. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(value = "has(self.selector) != has(self.vms)",
        message = "set exactly one of spec.selector (VirtualMachines by label) and spec.vms (VirtualMachines by name)")
public class VirtualClusterCheckpointSpec {
    @JsonPropertyDescription("VirtualMachines (kubevirt.io/v1) of this namespace, chosen by label.")
    public LabelSelector selector;

    @JsonPropertyDescription("VirtualMachines (kubevirt.io/v1) of this namespace, by name.")
    @Size(min = 1, max = 256)
    @ValidationRule(value = MekhaApi.NAMES_RULE,
            message = "each VM name must be a VirtualMachine's name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit")
    @ValidationRule(value = MekhaApi.UNIQUE_RULE, message = "a VM is named twice: name each VM once")
    public List<String> vms;

    @JsonPropertyDescription("How VM state reaches the shadows: MTD (live, memory-bound, default), StopAndCopy or BackgroundSnapshot (every VM stopped at the cut for milliseconds, RAM streamed after the resume; Ready once every copy is complete).")
    @Default("MTD")
    public TransferModeName transferMode;

    @JsonPropertyDescription("Bounds of the live stage.")
    public LiveStage liveStage;

    @JsonPropertyDescription("Levels beyond memory and their targets.")
    public StorageSpec storage;

    @JsonPropertyDescription("What guest clocks do after a restore from this checkpoint: Virtual (continue from the cut, default), Step or Slew to host time.")
    @Default("Virtual")
    public TimePolicyName timePolicy;

    @JsonPropertyDescription("How long the checkpoint may take, from creation, before it is aborted and Failed (default 5m).")
    @Pattern(MekhaApi.DURATION_PATTERN)
    @ValidationRule(value = MekhaApi.POSITIVE_DURATION_RULE, message = MekhaApi.POSITIVE_DURATION_MESSAGE)
    public String failureDeadline;

    @JsonPropertyDescription("VolumeSnapshotClass for the CSI snapshots of PVC-backed disks, taken while the VC is suspended at the cut (default: the cluster's default class for each driver).")
    public String volumeSnapshotClassName;

    @JsonPropertyDescription("Disks Mekha cannot cut with the VM (hostDisk): Refuse (default) or Discard (a restore finds them as they are then). PVC-backed disks are cut by CSI snapshots, one pod-only disk per VM (containerDisk overlay, ephemeral, emptyDisk) by the agent.")
    @Default("Refuse")
    public UncapturedDisks uncapturedDisks;

    @JsonPropertyDescription("What deleting this object does to the stored data: Delete (default) or Retain.")
    @Default("Delete")
    public DeletionPolicy deletionPolicy;
}
