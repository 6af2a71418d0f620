package io.mekha.api.v1alpha1;

import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.util.List;

/**
 * The fixed set of conditions a Mekha resource reports (Ready, Progressing, Failure), each with
 * the generation it describes, a machine reason and a human message. {@code lastTransitionTime}
 * moves only when a condition's status changes.
 */
public final class Conditions {
    public static final String READY = "Ready";
    public static final String PROGRESSING = "Progressing";
    public static final String FAILURE = "Failure";

    private Conditions() {}

    /** Sets one condition in {@code conditions}; returns whether anything a reader would see changed. */
    public static boolean set(List<Condition> conditions, String type, boolean status, String reason, String message, Long generation,
                              Instant now) {
        String value = status ? "True" : "False";
        Condition existing = conditions.stream().filter(c -> type.equals(c.getType())).findFirst().orElse(null);
        if (existing == null) {
            Condition c = new Condition();
            c.setType(type);
            c.setStatus(value);
            c.setReason(reason);
            c.setMessage(message);
            c.setObservedGeneration(generation);
            c.setLastTransitionTime(now.toString());
            conditions.add(c);
            return true;
        }
        boolean changed = !value.equals(existing.getStatus()) || !java.util.Objects.equals(reason, existing.getReason())
                || !java.util.Objects.equals(message, existing.getMessage())
                || !java.util.Objects.equals(generation, existing.getObservedGeneration());
        if (!value.equals(existing.getStatus())) {
            existing.setLastTransitionTime(now.toString());
        }
        existing.setStatus(value);
        existing.setReason(reason);
        existing.setMessage(message);
        existing.setObservedGeneration(generation);
        return changed;
    }

    /** The three conditions for work under way. */
    public static void progressing(List<Condition> conditions, String reason, String message, Long generation, Instant now) {
        set(conditions, READY, false, reason, message, generation, now);
        set(conditions, PROGRESSING, true, reason, message, generation, now);
        set(conditions, FAILURE, false, reason, "", generation, now);
    }

    /** Waiting without doing anything (a lock held elsewhere, say). */
    public static void waiting(List<Condition> conditions, String reason, String message, Long generation, Instant now) {
        set(conditions, READY, false, reason, message, generation, now);
        set(conditions, PROGRESSING, false, reason, message, generation, now);
        set(conditions, FAILURE, false, reason, "", generation, now);
    }

    public static void succeeded(List<Condition> conditions, String reason, String message, Long generation, Instant now) {
        set(conditions, READY, true, reason, message, generation, now);
        set(conditions, PROGRESSING, false, reason, message, generation, now);
        set(conditions, FAILURE, false, reason, "", generation, now);
    }

    public static void failed(List<Condition> conditions, String reason, String message, Long generation, Instant now) {
        set(conditions, READY, false, reason, message, generation, now);
        set(conditions, PROGRESSING, false, reason, message, generation, now);
        set(conditions, FAILURE, true, reason, message, generation, now);
    }

    public static Condition get(List<Condition> conditions, String type) {
        return conditions.stream().filter(c -> type.equals(c.getType())).findFirst().orElse(null);
    }
}
