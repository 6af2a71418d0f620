package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** One VM's restart: where it runs again, when, and what its clock did. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class VmRestoreResult {
    public String name;
    @JsonPropertyDescription("Node the VM runs on again.")
    public String node;
    @JsonPropertyDescription("When it resumed (RFC 3339, coordinator's clock).")
    public String resumedAt;
    @JsonPropertyDescription("The guest's clock at the cut and right after the restart (RFC 3339), when its guest agent answered.")
    public String guestClockAtCut;
    public String guestClockAfter;
}
