package io.mekha.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.Condition;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.KubeDuration;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("fast")
class ConditionsTest {
    static final Instant T0 = Instant.parse("2026-11-26T10:00:00Z");
    static final Instant T1 = Instant.parse("2026-11-26T10:05:00Z");

    @Test
    void lastTransitionTimeMovesOnlyWhenTheStatusChanges() {
        List<Condition> conditions = new ArrayList<>();
        Conditions.progressing(conditions, "Started", "checkpointing 3 VMs", 1L, T0);
        assertThat(conditions).extracting(Condition::getType).containsExactly("Ready", "Progressing", "Failure");

        boolean changed = Conditions.set(conditions, Conditions.PROGRESSING, true, "LiveStage", "live stage", 1L, T1);
        assertThat(changed).isTrue();
        Condition progressing = Conditions.get(conditions, Conditions.PROGRESSING);
        assertThat(progressing.getReason()).isEqualTo("LiveStage");
        assertThat(progressing.getLastTransitionTime()).as("still True: no transition").isEqualTo(T0.toString());

        Conditions.succeeded(conditions, "Captured", "held in memory", 1L, T1);
        assertThat(Conditions.get(conditions, Conditions.READY).getLastTransitionTime()).isEqualTo(T1.toString());
        assertThat(Conditions.get(conditions, Conditions.READY).getStatus()).isEqualTo("True");
        assertThat(Conditions.get(conditions, Conditions.FAILURE).getLastTransitionTime()).as("stayed False").isEqualTo(T0.toString());
        assertThat(Conditions.set(conditions, Conditions.READY, true, "Captured", "held in memory", 1L, T1)).as("same again: no change").isFalse();
    }

    @Test
    void failedConditionsCarryReasonMessageAndGeneration() {
        List<Condition> conditions = new ArrayList<>();
        Conditions.failed(conditions, "NoVirtualMachines", "selector matches nothing", 3L, T0);
        Condition failure = Conditions.get(conditions, Conditions.FAILURE);
        assertThat(failure.getStatus()).isEqualTo("True");
        assertThat(failure.getReason()).isEqualTo("NoVirtualMachines");
        assertThat(failure.getMessage()).isEqualTo("selector matches nothing");
        assertThat(failure.getObservedGeneration()).isEqualTo(3L);
    }

    @Test
    void durationsReadAsKubernetesWritesThemAndBadOnesNameTheField() {
        assertThat(KubeDuration.parse("f", "90s", null)).isEqualTo(Duration.ofSeconds(90));
        assertThat(KubeDuration.parse("f", "1h30m", null)).isEqualTo(Duration.ofMinutes(90));
        assertThat(KubeDuration.parse("f", "250ms", null)).isEqualTo(Duration.ofMillis(250));
        assertThat(KubeDuration.parse("f", null, Duration.ofMinutes(5))).isEqualTo(Duration.ofMinutes(5));
        assertThatThrownBy(() -> KubeDuration.parse("spec.failureDeadline", "5 minutes", null))
                .hasMessageContaining("spec.failureDeadline '5 minutes'").hasMessageContaining("90s, 5m, 1h30m");
        assertThat(KubeDuration.format(Duration.ofNanos(1_234_000))).isEqualTo("1.234ms");
        assertThat(KubeDuration.format(Duration.ofMillis(185))).isEqualTo("185ms");
        assertThat(KubeDuration.format(Duration.ofMillis(12_500))).isEqualTo("12.5s");
    }
}
