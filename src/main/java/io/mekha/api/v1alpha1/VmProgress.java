package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** One VM's part in a checkpoint: where it runs, how far it got, what it cost. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class VmProgress {
    @JsonPropertyDescription("VirtualMachine name.")
    public String name;
    @JsonPropertyDescription("Node of its VirtualMachineInstance, and so of the agent that drives it.")
    public String node;
    @JsonPropertyDescription("Protocol phase on the agent (Prepared, Live, LiveDone, Stopped, Captured, Resumed, Aborted, Failed).")
    public String phase;
    @JsonPropertyDescription("How long the guest was paused, e.g. 185ms.")
    public String pausedTime;
    @JsonPropertyDescription("Bytes of VM state moved to the shadow.")
    public Long bytes;
    @JsonPropertyDescription("When the VM was stopped at the cut (RFC 3339, coordinator's clock).")
    public String suspendedAt;
    @JsonPropertyDescription("When the VM ran again (RFC 3339, coordinator's clock).")
    public String resumedAt;
    @JsonPropertyDescription("The guest's clock at the cut (RFC 3339), when its guest agent answered.")
    public String guestClockAtCut;
    @JsonPropertyDescription("Why this VM failed, when it did.")
    public String error;
}
