package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.CheckpointTemplate;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.MekhaApi;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Retention;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointScheduleSpec;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The schedule on a clock the test moves: checkpoints appear when due (one per due instant, however
 * often the schedule is reconciled) and retention prunes the old ones. Only the schedule's
 * controller runs: the test plays the checkpoint controller, marking checkpoints Succeeded.
 */
@Tag("fast")
class ScheduleReconcilerTest {
    static final String NS = "hpc";

    MockKubernetes kube;
    KubernetesClient client;
    final MovableClock clock = new MovableClock(Instant.now().truncatedTo(ChronoUnit.HOURS).plus(Duration.ofDays(1)));

    @BeforeEach
    void apiServer() throws Exception {
        kube = new MockKubernetes();
        client = kube.client;
        kube.namespace(NS);
    }

    @AfterEach
    void stop() {
        kube.close();
    }

    @Test
    void checkpointsAreCreatedWhenDueAndRetentionKeepsTheNewest() throws Exception {
        try (TestOperator operator = TestOperator.schedulesOnly(client, clock)) {
            VirtualClusterCheckpointSchedule schedule = schedule("every5", "*/5 * * * *");
            schedule.getSpec().retention = new Retention();
            schedule.getSpec().retention.keepLast = 2;
            client.resource(schedule).create();

            // created "now" (real time, a day before the test clock): the first run is due at once, at the clock's hour
            awaitTrue(() -> children().size() == 1, "the first checkpoint");
            VirtualClusterCheckpoint first = children().get(0);
            assertThat(first.getMetadata().getName()).isEqualTo("every5-" + stamp(clock.instant()));
            assertThat(first.getMetadata().getLabels()).containsEntry(MekhaApi.SCHEDULE_LABEL, "every5").containsEntry("team", "hpc");
            assertThat(first.getSpec().vms).containsExactly("vm1", "vm2");
            VirtualClusterCheckpointSchedule st = awaitSchedule(s -> s.getStatus().nextScheduleTime != null);
            assertThat(st.getStatus().nextScheduleTime).isEqualTo(clock.instant().plus(Duration.ofMinutes(5)).toString());

            // nothing more until the next due instant, however often it is reconciled
            clock.advance(Duration.ofMinutes(4));
            awaitReconciledAfterNow(operator, "every5");
            assertThat(children()).hasSize(1);

            for (int i = 0; i < 4; i++) {
                succeed(children());
                clock.advance(Duration.ofMinutes(5));
                String due = "every5-" + stamp(fiveMinuteGrid(clock.instant()));
                // the reconcile that creates a checkpoint prunes right after: wait for both
                awaitTrue(() -> children().stream().anyMatch(c -> c.getMetadata().getName().equals(due)) && children().size() <= 3,
                        due + ", with retention keeping 2 successes and the one just created");
            }
            succeed(children());
            awaitTrue(() -> children().size() == 2, "retention down to keepLast=2");
            List<String> kept = children().stream().map(c -> c.getMetadata().getName()).sorted().toList();
            Instant last = fiveMinuteGrid(clock.instant());
            assertThat(kept).containsExactly("every5-" + stamp(last.minus(Duration.ofMinutes(5))), "every5-" + stamp(last));
            st = awaitSchedule(s -> s.getStatus().lastSuccessfulCheckpoint != null && s.getStatus().checkpoints == 2);
            assertThat(st.getStatus().lastSuccessfulCheckpoint).isEqualTo("every5-" + stamp(last));

            // deleted, the schedule takes its gauges with it (the missed-runs alert would fire for it otherwise); its checkpoints stay
            awaitTrue(() -> gauge(operator, "every5") != null && gauge(operator, "every5").value() == last.getEpochSecond(),
                    "the schedule's gauges, its last success at " + last);
            client.resource(schedule).delete();
            awaitTrue(() -> get("every5") == null && gauge(operator, "every5") == null, "the schedule and its gauges gone");
            assertThat(children()).hasSize(2);
            assertThat(client.v1().events().inNamespace(NS).list().getItems()).extracting(e -> e.getReason()).contains("CheckpointCreated",
                    "CheckpointPruned");
        }
    }

    @Test
    void maxAgeDeletesOldSuccessesButNeverTheNewestAndFailedHistoryIsBounded() throws Exception {
        try (TestOperator operator = TestOperator.schedulesOnly(client, clock)) {
            VirtualClusterCheckpointSchedule schedule = schedule("hourly", "0 * * * *");
            schedule.getSpec().retention = new Retention();
            schedule.getSpec().retention.maxAge = "150m";
            schedule.getSpec().retention.failedHistoryLimit = 1;
            client.resource(schedule).create();
            awaitTrue(() -> children().size() == 1, "the first checkpoint");
            succeed(children());
            // two hourly runs that fail, then successes; the clock moves an hour at a time
            for (int hour = 1; hour <= 5; hour++) {
                clock.advance(Duration.ofHours(1));
                String due = "hourly-" + stamp(clock.instant().truncatedTo(ChronoUnit.HOURS));
                awaitTrue(() -> children().stream().anyMatch(c -> c.getMetadata().getName().equals(due)), due);
                VirtualClusterCheckpoint made = children().stream().filter(c -> c.getMetadata().getName().equals(due)).findFirst().orElseThrow();
                if (hour <= 2) {
                    if (made.getStatus() == null) {
                        made.setStatus(new io.mekha.api.v1alpha1.VirtualClusterCheckpointStatus());
                    }
                    made.getStatus().phase = Phase.Failed;
                    client.resource(made).updateStatus();
                } else {
                    succeed(List.of(made));
                }
            }
            Instant now = clock.instant().truncatedTo(ChronoUnit.HOURS);
            // successes due now, 1 h and 2 h ago are younger than 150 min; the first (5 h ago) is older; of the failures only the newest stays
            awaitTrue(() -> children().size() == 4, "retention by age and failed history");
            assertThat(children()).extracting(c -> c.getMetadata().getName()).containsExactlyInAnyOrder("hourly-" + stamp(now),
                    "hourly-" + stamp(now.minus(Duration.ofHours(1))), "hourly-" + stamp(now.minus(Duration.ofHours(2))),
                    "hourly-" + stamp(now.minus(Duration.ofHours(3))));

            // long after, with no new run (suspended), the newest success is still kept
            // a merge patch, as kubectl patch sends it: no resourceVersion to lose a race with the operator's status writes
            client.resources(VirtualClusterCheckpointSchedule.class).inNamespace(NS).withName("hourly").patch(
                    io.fabric8.kubernetes.client.dsl.base.PatchContext.of(io.fabric8.kubernetes.client.dsl.base.PatchType.JSON_MERGE),
                    "{\"spec\": {\"suspend\": true}}");
            clock.advance(Duration.ofDays(2));
            awaitTrue(() -> children().stream().filter(c -> c.getStatus() != null && c.getStatus().phase == Phase.Succeeded).count() == 1, "only the newest success");
            assertThat(children()).extracting(c -> c.getMetadata().getName()).contains("hourly-" + stamp(now));
        }
    }

    @Test
    void aSuspendedScheduleCreatesNothingAndABadCronIsExplained() throws Exception {
        try (TestOperator operator = TestOperator.schedulesOnly(client, clock)) {
            VirtualClusterCheckpointSchedule paused = schedule("paused", "*/5 * * * *");
            paused.getSpec().suspend = true;
            client.resource(paused).create();
            VirtualClusterCheckpointSchedule bad = schedule("bad", "61 * * * *");
            client.resource(bad).create();
            VirtualClusterCheckpointSchedule badZone = schedule("badzone", "0 * * * *");
            badZone.getSpec().timeZone = "Mars/Olympus";
            client.resource(badZone).create();
            // mostly hourly, but twice two minutes apart: closer than the minimum interval
            client.resource(schedule("tooclose", "0,2 * * * *")).create();

            awaitTrue(() -> reason("bad").equals("InvalidSchedule") && reason("badzone").equals("InvalidSchedule")
                    && reason("tooclose").equals("InvalidSchedule")
                    && reason("paused").equals("Suspended"), "conditions");
            clock.advance(Duration.ofMinutes(20));
            awaitReconciledAfterNow(operator, "paused");
            assertThat(children()).isEmpty();
            var failure = Conditions.get(get("bad").getStatus().conditions, Conditions.FAILURE);
            assertThat(failure.getMessage()).contains("61").contains("five cron fields");
            assertThat(Conditions.get(get("badzone").getStatus().conditions, Conditions.FAILURE).getMessage()).contains("Mars/Olympus");
            assertThat(Conditions.get(get("tooclose").getStatus().conditions, Conditions.FAILURE).getMessage())
                    .contains("runs 2m apart").contains("at least 5m apart");
        }
    }

    @Test
    void aScheduleInAnotherTimeZoneFiresAtThatZonesMidnight() throws Exception {
        Instant berlinMidnight = clock.instant().atZone(ZoneId.of("Europe/Berlin")).plusDays(1).truncatedTo(ChronoUnit.DAYS).toInstant();
        clock.set(berlinMidnight.minus(Duration.ofMinutes(1)));
        try (TestOperator operator = TestOperator.schedulesOnly(client, clock)) {
            VirtualClusterCheckpointSchedule nightly = schedule("nightly", "0 0 * * *");
            nightly.getSpec().timeZone = "Europe/Berlin";
            client.resource(nightly).create();
            // created "now" (real time): the midnight before the clock counts as missed and is made up once
            awaitTrue(() -> children().size() == 1, "the made-up run");
            var st = awaitSchedule(s -> s.getStatus().nextScheduleTime != null);
            assertThat(st.getStatus().nextScheduleTime).isEqualTo(berlinMidnight.toString());
            clock.advance(Duration.ofMinutes(2));
            awaitTrue(() -> children().size() == 2, "the midnight run");
            assertThat(children()).extracting(c -> c.getMetadata().getName()).contains("nightly-" + stamp(berlinMidnight));
        }
    }

    private String reason(String name) {
        var s = get(name);
        if (s == null || s.getStatus() == null) {
            return "";
        }
        var ready = Conditions.get(s.getStatus().conditions, Conditions.READY);
        return ready == null ? "" : ready.getReason();
    }

    private VirtualClusterCheckpointSchedule get(String name) {
        return client.resources(VirtualClusterCheckpointSchedule.class).inNamespace(NS).withName(name).get();
    }

    /** Plays the checkpoint controller's success for every checkpoint that has not finished. */
    private void succeed(List<VirtualClusterCheckpoint> checkpoints) {
        for (VirtualClusterCheckpoint c : checkpoints) {
            if (c.getStatus() == null) {
                c.setStatus(new io.mekha.api.v1alpha1.VirtualClusterCheckpointStatus());
            }
            if (c.getStatus().phase != Phase.Succeeded) {
                c.getStatus().phase = Phase.Succeeded;
                c.getStatus().readyToUse = true;
                c.getStatus().completedAt = clock.instant().toString();
                client.resource(c).updateStatus();
            }
        }
    }

    private static io.micrometer.core.instrument.Gauge gauge(TestOperator operator, String schedule) {
        return operator.meters.find("mekha.schedule.last.success").tags("namespace", NS, "schedule", schedule).gauge();
    }

    private List<VirtualClusterCheckpoint> children() {
        return client.resources(VirtualClusterCheckpoint.class).inNamespace(NS).list().getItems();
    }

    private static Instant fiveMinuteGrid(Instant t) {
        Instant minute = t.truncatedTo(ChronoUnit.MINUTES);
        return minute.minus(Duration.ofMinutes(minute.atZone(ZoneOffset.UTC).getMinute() % 5));
    }

    private static String stamp(Instant t) {
        return java.time.format.DateTimeFormatter.ofPattern("yyyyMMddHHmm").withZone(ZoneOffset.UTC).format(t);
    }

    private VirtualClusterCheckpointSchedule schedule(String name, String cron) {
        VirtualClusterCheckpointSchedule s = new VirtualClusterCheckpointSchedule();
        s.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).build());
        s.setSpec(new VirtualClusterCheckpointScheduleSpec());
        s.getSpec().schedule = cron;
        s.getSpec().template = new CheckpointTemplate();
        s.getSpec().template.labels = java.util.Map.of("team", "hpc");
        s.getSpec().template.spec = new VirtualClusterCheckpointSpec();
        s.getSpec().template.spec.vms = List.of("vm1", "vm2");
        s.setStatus(null); // what a real API server stores for a new object: no status
        return s;
    }

    private VirtualClusterCheckpointSchedule awaitSchedule(java.util.function.Predicate<VirtualClusterCheckpointSchedule> test)
            throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            VirtualClusterCheckpointSchedule s = client.resources(VirtualClusterCheckpointSchedule.class).inNamespace(NS).list().getItems()
                    .stream().findFirst().orElse(null);
            if (s != null && s.getStatus() != null && test.test(s)) {
                return s;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the schedule's status did not get there");
    }

    /**
     * Waits until a reconcile of the schedule that began after this call has ended (the second to
     * end from now: the first may have begun before), so its effects are in the API server.
     */
    private static void awaitReconciledAfterNow(TestOperator operator, String schedule) throws InterruptedException {
        int before = operator.reconciles(VirtualClusterCheckpointSchedule.class, schedule);
        awaitTrue(() -> operator.reconciles(VirtualClusterCheckpointSchedule.class, schedule) >= before + 2,
                "two reconciles of " + schedule + " at the moved clock");
    }

    private static void awaitTrue(Supplier<Boolean> test, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!test.get()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(100);
        }
    }

    /** A clock the test moves by hand. */
    static final class MovableClock extends Clock {
        private volatile Instant now;

        MovableClock(Instant start) {
            this.now = start;
        }

        void advance(Duration d) {
            now = now.plus(d);
        }

        void set(Instant t) {
            now = t;
        }

        @Override
        public Instant instant() {
            return now;
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }
    }
}
