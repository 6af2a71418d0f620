package io.mekha.api.v1alpha1;

/** Names shared by the API's resources: group, version, labels, annotations, finalizers. */
public final class MekhaApi {
    public static final String GROUP = "mekha.io";
    public static final String VERSION = "v1alpha1";
    /** Set on checkpoints a schedule created; its value is the schedule's name. */
    public static final String SCHEDULE_LABEL = "mekha.io/schedule";
    /** Set on checkpoints a schedule created: the instant they were due (RFC 3339). */
    public static final String SCHEDULED_AT_ANNOTATION = "mekha.io/scheduled-at";
    /** A duration as Kubernetes writes them: 90s, 5m, 1h30m, 250ms. */
    public static final String DURATION_PATTERN = "^([0-9]+(ms|s|m|h))+$";

    private MekhaApi() {}
}
