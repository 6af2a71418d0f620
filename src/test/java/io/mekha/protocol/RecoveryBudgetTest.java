package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The loop guard of automatic recovery, on a clock of the test's own. */
@Tag("fast")
class RecoveryBudgetTest {
    static final Instant T0 = Instant.parse("2026-12-03T12:00:00Z");

    @Test
    void theFirstRecoveryGoesAtOnceAndEachNextWaitsADoublingBackoffUpToItsCap() {
        RecoveryBudget budget = new RecoveryBudget(10, Duration.ofHours(1), Duration.ofSeconds(2), Duration.ofSeconds(5));
        assertThat(budget.next(T0).allowed()).isTrue();
        budget.started(T0);
        RecoveryBudget.Decision soon = budget.next(T0.plusMillis(500));
        assertThat(soon.allowed()).isFalse();
        assertThat(soon.exhausted()).isFalse();
        assertThat(soon.delay()).isEqualTo(Duration.ofMillis(1500));
        assertThat(budget.next(T0.plusSeconds(2)).allowed()).isTrue();
        budget.started(T0.plusSeconds(2));
        assertThat(budget.next(T0.plusSeconds(3)).delay()).as("doubled: 4 s after the second").isEqualTo(Duration.ofSeconds(3));
        budget.started(T0.plusSeconds(6));
        assertThat(budget.next(T0.plusSeconds(6)).delay()).as("8 s, capped at 5 s").isEqualTo(Duration.ofSeconds(5));
    }

    @Test
    void pastTheLimitWithinTheWindowRecoveryStopsWithTheReasonAndTheWindowSlides() {
        RecoveryBudget budget = new RecoveryBudget(2, Duration.ofMinutes(10), Duration.ZERO, Duration.ZERO);
        budget.started(T0);
        budget.started(T0.plusSeconds(60));
        RecoveryBudget.Decision third = budget.next(T0.plusSeconds(120));
        assertThat(third.allowed()).isFalse();
        assertThat(third.exhausted()).isTrue();
        assertThat(third.refusal()).contains("2 recoveries within 10m already, the limit").contains("automatic recovery stopped")
                .contains("restore by hand");
        assertThat(budget.next(T0.plusSeconds(601)).allowed()).as("the first one left the window").isTrue();
    }

    @Test
    void aBudgetThatCannotWorkIsRefusedWithWhatToFix() {
        assertThatThrownBy(() -> new RecoveryBudget(0, Duration.ofMinutes(1), Duration.ZERO, Duration.ZERO))
                .hasMessageContaining("at least 1");
        assertThatThrownBy(() -> new RecoveryBudget(1, Duration.ZERO, Duration.ZERO, Duration.ZERO)).hasMessageContaining("window must be positive");
        assertThatThrownBy(() -> new RecoveryBudget(1, Duration.ofMinutes(1), Duration.ofSeconds(5), Duration.ofSeconds(1)))
                .hasMessageContaining("0 <= first <= max");
    }
}
