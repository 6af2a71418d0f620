package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.ArrayList;
import java.util.List;

/** Automatic recovery of a schedule's VC: what is watched, what happened, what is left of the budget. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RecoveryStatus {
    @JsonPropertyDescription("Watching, NothingToRestore (no checkpoint ready to use yet), Recovering, BackingOff or Stopped.")
    public String state;
    public String message;
    @JsonPropertyDescription("The checkpoint a recovery would restore from now.")
    public String checkpoint;
    @JsonPropertyDescription("The VMs watched, as name@node.")
    public List<String> vms;
    @JsonPropertyDescription("The loop guard, and the recoveries it has counted since recovery was last armed.")
    public String budget;
    @JsonPropertyDescription("Recovery was (re)armed at this instant: recoveries before it do not count against the budget (RFC 3339).")
    public String armedAt;
    @JsonPropertyDescription("The spec generation recovery stopped at; editing the spec arms it again.")
    public Long stoppedAtGeneration;
    @JsonPropertyDescription("A failure seen and not yet answered by a restore (while checkpoints in flight are aborted, or a backoff runs).")
    public String failure;
    public String failureSeenAt;
    @JsonPropertyDescription("Checkpoints in flight cancelled for the pending recovery.")
    public List<String> aborted;
    @JsonPropertyDescription("The newest recoveries, oldest first.")
    public List<RecoveryRecord> history = new ArrayList<>();
}
