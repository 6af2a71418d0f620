package io.mekha.api.v1alpha1;

/** Where a checkpoint or restore is in its life; Succeeded and Failed are final. */
public enum Phase {
    Pending, InProgress, Succeeded, Failed;

    public boolean terminal() {
        return this == Succeeded || this == Failed;
    }
}
