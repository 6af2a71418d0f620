package io.mekha.api.v1alpha1;

/** Names shared by the API's resources: group, version, labels, annotations, finalizers. */
public final class MekhaApi {
    public static final String GROUP = "mekha.io";
    public static final String VERSION = "v1alpha1";
    /** Set on checkpoints a schedule created; its value is the schedule's name. */
    public static final String SCHEDULE_LABEL = "mekha.io/schedule";
    /** Set on checkpoints a schedule created: the instant they were due (RFC 3339). */
    public static final String SCHEDULED_AT_ANNOTATION = "mekha.io/scheduled-at";
    /** On a VirtualClusterRestore the operator created to recover a schedule's VC: the failure it answers. */
    public static final String RECOVERY_ANNOTATION = "mekha.io/recovery-of";
    /** A duration as Kubernetes writes them: 90s, 5m, 1h30m, 250ms. */
    public static final String DURATION_PATTERN = "^([0-9]+(ms|s|m|h))+$";
    /** CEL: a duration that matches {@link #DURATION_PATTERN} is above zero when any of its digits is. */
    public static final String POSITIVE_DURATION_RULE = "self.matches('[1-9]')";
    public static final String POSITIVE_DURATION_MESSAGE = "a duration above zero, such as 250ms, 30s, 5m or 1h30m";
    /** An object name as Kubernetes allows them (RFC 1123 subdomain), as VirtualMachines and checkpoints are named. */
    public static final String NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    /** CEL over a list of names: each one a Kubernetes object name. */
    public static final String NAMES_RULE = "self.all(n, n.size() <= 253 && n.matches('" + NAME_PATTERN + "'))";
    /** CEL over a list: no value twice (the list is a set). */
    public static final String UNIQUE_RULE = "self.all(x, self.exists_one(y, y == x))";
    /** CEL on a whole spec: never changed once written (a restore must use what the checkpoint was taken with). */
    public static final String IMMUTABLE_RULE = "self == oldSelf";

    private MekhaApi() {}
}
