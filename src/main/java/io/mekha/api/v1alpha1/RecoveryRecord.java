package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.List;

/** One automatic recovery: what failed, what was restored from, how it ended. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RecoveryRecord {
    @JsonPropertyDescription("When the operator saw the failure (RFC 3339).")
    public String detectedAt;
    @JsonPropertyDescription("What failed, as the operator saw it.")
    public String failure;
    @JsonPropertyDescription("Checkpoints of the VC in flight that were aborted first.")
    public List<String> abortedCheckpoints;
    @JsonPropertyDescription("The checkpoint restored from, and its cut (RFC 3339).")
    public String checkpoint;
    public String cutAt;
    @JsonPropertyDescription("The work lost: from the cut to the failure's detection.")
    public String lostWork;
    @JsonPropertyDescription("The VirtualClusterRestore the operator created.")
    public String restore;
    @JsonPropertyDescription("InProgress, Succeeded or Failed: the restore's phase.")
    public Phase phase;
    @JsonPropertyDescription("The level the VC was restored from.")
    public LevelName restoredFrom;
    @JsonPropertyDescription("When every VM ran again (RFC 3339), and how long after the detection that was.")
    public String runningAgainAt;
    public String restoreTook;
    @JsonPropertyDescription("Why the restore failed.")
    public String message;
}
