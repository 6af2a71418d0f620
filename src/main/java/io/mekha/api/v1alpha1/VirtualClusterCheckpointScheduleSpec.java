package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;

/** When to checkpoint, what, and how many to keep. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class VirtualClusterCheckpointScheduleSpec {
    @Required
    @JsonPropertyDescription("Cron expression, five fields as in a Kubernetes CronJob: minute hour day-of-month month day-of-week; runs at least 5m apart.")
    @Pattern("^\\s*\\S+(\\s+\\S+){4}\\s*$")
    public String schedule;

    @JsonPropertyDescription("IANA time zone the schedule is read in (default UTC), such as Europe/Berlin.")
    public String timeZone;

    @JsonPropertyDescription("Stop creating checkpoints (existing ones are kept).")
    @Default("false")
    public Boolean suspend;

    @Required
    public CheckpointTemplate template;

    public Retention retention;

    @JsonPropertyDescription("Automatic recovery of the VC when one of its VMs fails (default: Manual).")
    public RecoverySpec recovery;
}
