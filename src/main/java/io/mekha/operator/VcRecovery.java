package io.mekha.operator;

import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.KubeDuration;
import io.mekha.api.v1alpha1.MekhaApi;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.RecoveryPolicy;
import io.mekha.api.v1alpha1.RecoveryRecord;
import io.mekha.api.v1alpha1.RecoverySpec;
import io.mekha.api.v1alpha1.RecoveryStatus;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VirtualClusterRestoreSpec;
import io.mekha.operator.service.OperatorServices;
import io.mekha.operator.service.ProtocolRuns;
import io.mekha.operator.service.VmHealth;
import io.mekha.protocol.RecoveryBudget;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Automatic recovery of a schedule's virtual cluster ({@code spec.recovery.policy: Automatic}). Each look checks every
 * VM of the newest checkpoint that is ready to use ({@link VmHealth}); when one has failed it cancels the checkpoints
 * of those VMs in flight, waits until they have ended, and creates a VirtualClusterRestore of the whole VC from that
 * checkpoint (the restore falls back level by level to the fastest that survived). The restores it created are the
 * record: they carry the schedule's label and the failure they answer, and the history in status is read from them, so
 * neither a stale cache nor an operator restart makes a second restore for one failure. A {@link RecoveryBudget} rebuilt
 * from them bounds how many start in a window; past it recovery stops until the spec is edited.
 */
final class VcRecovery {
    /** Recoveries kept (their restores and history records); older finished ones are deleted. */
    static final int HISTORY = 10;
    static final String DETECTED_AT = "mekha.io/recovery-detected-at";
    static final String ABORTED = "mekha.io/recovery-aborted";
    static final String CUT_AT = "mekha.io/recovery-cut-at";
    private static final Duration MAX_BACKOFF = Duration.ofMinutes(10);
    private static final DateTimeFormatter NAME_TIME = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss-SSS").withZone(ZoneOffset.UTC);

    /** What one look decided: the status to write, and when to look again (null: only on the next event). */
    record Look(RecoveryStatus status, Duration again) {}

    private final OperatorServices services;
    private final VmHealth health;

    VcRecovery(OperatorServices services) {
        this.services = services;
        this.health = new VmHealth(services.client());
    }

    static boolean automatic(VirtualClusterCheckpointSchedule schedule) {
        RecoverySpec r = schedule.getSpec() == null ? null : schedule.getSpec().recovery;
        return r != null && r.policy == RecoveryPolicy.Automatic;
    }

    /** One look at {@code cached}'s VC; {@code children} are its checkpoints. Null status: recovery is off. */
    Look look(VirtualClusterCheckpointSchedule cached, List<VirtualClusterCheckpoint> children, Instant now) {
        if (!automatic(cached)) {
            return new Look(null, null);
        }
        String ns = cached.getMetadata().getNamespace();
        // what this process wrote last, not the cache's copy: the decisions below rest on it
        VirtualClusterCheckpointSchedule schedule = services.client().resources(VirtualClusterCheckpointSchedule.class).inNamespace(ns)
                .withName(cached.getMetadata().getName()).get();
        if (schedule == null) {
            return new Look(null, null);
        }
        RecoverySpec spec = schedule.getSpec().recovery;
        RecoveryStatus before = schedule.getStatus() == null || schedule.getStatus().recovery == null ? new RecoveryStatus()
                : schedule.getStatus().recovery;
        RecoveryStatus out = new RecoveryStatus();
        Long generation = schedule.getMetadata().getGeneration();
        boolean rearmed = "Stopped".equals(before.state) && !java.util.Objects.equals(before.stoppedAtGeneration, generation);
        out.armedAt = before.armedAt == null || rearmed ? now.toString() : before.armedAt;
        Duration window;
        Duration backoff;
        Duration grace;
        int max = spec.maxRecoveries == null ? 3 : spec.maxRecoveries;
        try {
            window = KubeDuration.parse("spec.recovery.window", spec.window, Duration.ofHours(1));
            backoff = KubeDuration.parse("spec.recovery.backoff", spec.backoff, Duration.ofSeconds(30));
            grace = KubeDuration.parse("spec.recovery.nodeGracePeriod", spec.nodeGracePeriod, Duration.ofSeconds(30));
        } catch (IllegalArgumentException e) {
            out.state = "Stopped";
            out.message = "cannot read spec.recovery: " + e.getMessage();
            return new Look(out, null);
        }
        RecoveryBudget budget = new RecoveryBudget(max, window, backoff, backoff.compareTo(MAX_BACKOFF) > 0 ? backoff : MAX_BACKOFF);

        List<VirtualClusterRestore> restores = recoveries(schedule);
        out.history = restores.stream().map(r -> record(r, now)).toList();
        reportEnded(schedule, before, restores);
        Instant armed = Instant.parse(out.armedAt);
        int counted = 0;
        for (VirtualClusterRestore r : restores) {
            Instant at = detectedAt(r);
            if (!at.isBefore(armed)) {
                budget.started(at);
                counted++;
            }
        }
        out.budget = budget.describe() + "; " + counted + " since " + out.armedAt;
        if ("Stopped".equals(before.state) && !rearmed) {
            out.state = before.state;
            out.message = before.message;
            out.stoppedAtGeneration = before.stoppedAtGeneration;
            out.checkpoint = before.checkpoint;
            out.vms = before.vms;
            return new Look(out, null);
        }
        Optional<VirtualClusterRestore> running = restores.stream().filter(r -> !terminal(r)).findFirst();
        if (running.isPresent()) {
            out.state = "Recovering";
            out.message = "restore " + running.get().getMetadata().getName() + " of the VC from checkpoint " + running.get().getSpec().checkpointName
                    + " is under way";
            return new Look(out, services.observeEvery());
        }

        Optional<VirtualClusterCheckpoint> source = source(children, restores);
        if (source.isEmpty()) {
            out.state = "NothingToRestore";
            boolean anyReady = children.stream().anyMatch(c -> c.getStatus() != null && Boolean.TRUE.equals(c.getStatus().readyToUse));
            out.message = anyReady ? "the restores from every checkpoint of this schedule that is ready to use failed since the last recovery"
                    + " that worked (see history): a failure now could not be recovered until a new checkpoint succeeds"
                    : "no checkpoint of this schedule is ready to use yet: a failure now could not be recovered";
            return new Look(out, null);
        }
        VirtualClusterCheckpoint cp = source.get();
        Instant cut = Instant.parse(cp.getStatus().suspendAt);
        out.checkpoint = cp.getMetadata().getName();
        out.vms = cp.getStatus().vms.stream().map(v -> v.name + "@" + v.node).toList();
        Set<String> vms = new HashSet<>(cp.getStatus().vms.stream().map(v -> v.name).toList());
        Optional<String> restoring = restoreOf(ns, vms);
        if (restoring.isPresent()) {
            out.state = "Watching";
            out.message = "restore " + restoring.get() + " holds the VMs; watching again once it has ended";
            return new Look(out, services.observeEvery());
        }
        List<String> failures = new ArrayList<>();
        Duration again = null;
        for (String vm : cp.getStatus().vms.stream().map(v -> v.name).sorted().toList()) {
            VmHealth.Verdict verdict = health.check(ns, vm, cut, grace, now);
            if (verdict.failed()) {
                failures.add(verdict.failure());
            } else if (verdict.recheckIn() != null) {
                again = again == null || verdict.recheckIn().compareTo(again) < 0 ? verdict.recheckIn() : again;
            }
        }
        if (failures.isEmpty()) {
            out.state = "Watching";
            out.message = out.vms.size() + " VMs watched; a failure restores the VC from " + cp.getMetadata().getName() + " " + cp.getStatus().levels;
            return new Look(out, again);
        }
        String failure = String.join("; ", failures);
        Instant seen = before.failureSeenAt != null ? Instant.parse(before.failureSeenAt) : now;
        out.failureSeenAt = seen.toString();
        out.failure = failure;
        if (!failure.equals(before.failure)) {
            services.events().warning(schedule, Reasons.VM_FAILED, failure);
        }
        RecoveryBudget.Decision decision = budget.next(now);
        if (decision.exhausted()) {
            out.state = "Stopped";
            out.stoppedAtGeneration = generation;
            out.message = failure + ". " + decision.refusal() + " (edit spec.recovery to arm it again)";
            services.events().warning(schedule, Reasons.RECOVERY_STOPPED, out.message);
            return new Look(out, null);
        }
        if (!decision.allowed()) {
            out.state = "BackingOff";
            out.message = failure + "; the next recovery may start in " + KubeDuration.format(decision.delay()) + " (spec.recovery.backoff)";
            return new Look(out, decision.delay());
        }
        List<String> aborting = abortInFlight(schedule, vms, failure);
        out.aborted = merge(before.aborted, aborting);
        if (!aborting.isEmpty()) {
            out.state = "Recovering";
            out.message = failure + "; aborting " + String.join(", ", aborting) + " first";
            return new Look(out, shortLook());
        }
        String restore = createRestore(schedule, cp, failure, seen, out.aborted);
        out.state = "Recovering";
        out.message = failure + "; restoring the VC from " + cp.getMetadata().getName() + " (" + restore + ")";
        out.failure = null;
        out.failureSeenAt = null;
        out.aborted = null;
        List<VirtualClusterRestore> now2 = recoveries(schedule);
        out.history = now2.stream().map(r -> record(r, now)).toList();
        return new Look(out, services.observeEvery());
    }

    private Duration shortLook() {
        Duration second = Duration.ofSeconds(1);
        return services.observeEvery().compareTo(second) < 0 ? services.observeEvery() : second;
    }

    private static List<String> merge(List<String> a, List<String> b) {
        List<String> all = new ArrayList<>(a == null ? List.of() : a);
        b.stream().filter(x -> !all.contains(x)).forEach(all::add);
        return all.isEmpty() ? null : all;
    }

    /** The schedule's recovery restores, oldest first; beyond {@link #HISTORY} the oldest finished ones are deleted. */
    private List<VirtualClusterRestore> recoveries(VirtualClusterCheckpointSchedule schedule) {
        List<VirtualClusterRestore> all = new ArrayList<>(services.client().resources(VirtualClusterRestore.class)
                .inNamespace(schedule.getMetadata().getNamespace()).withLabel(MekhaApi.SCHEDULE_LABEL, schedule.getMetadata().getName())
                .list().getItems().stream().filter(r -> r.getMetadata().getAnnotations() != null
                        && r.getMetadata().getAnnotations().containsKey(MekhaApi.RECOVERY_ANNOTATION)).toList());
        all.sort(Comparator.comparing(VcRecovery::detectedAt));
        while (all.size() > HISTORY && terminal(all.get(0))) {
            services.client().resource(all.remove(0)).delete();
        }
        return all;
    }

    private static Instant detectedAt(VirtualClusterRestore r) {
        String at = r.getMetadata().getAnnotations().get(DETECTED_AT);
        return at != null ? Instant.parse(at) : Instant.parse(r.getMetadata().getCreationTimestamp() == null ? Instant.EPOCH.toString()
                : r.getMetadata().getCreationTimestamp());
    }

    private static boolean terminal(VirtualClusterRestore r) {
        return r.getStatus() != null && r.getStatus().phase != null && r.getStatus().phase.terminal();
    }

    private RecoveryRecord record(VirtualClusterRestore r, Instant now) {
        RecoveryRecord rec = new RecoveryRecord();
        Map<String, String> a = r.getMetadata().getAnnotations();
        Instant detected = detectedAt(r);
        rec.detectedAt = detected.toString();
        rec.failure = a.get(MekhaApi.RECOVERY_ANNOTATION);
        rec.abortedCheckpoints = a.get(ABORTED) == null ? null : List.of(a.get(ABORTED).split(","));
        rec.checkpoint = r.getSpec().checkpointName;
        rec.cutAt = a.get(CUT_AT);
        if (rec.cutAt != null) {
            rec.lostWork = KubeDuration.format(Duration.between(Instant.parse(rec.cutAt), detected));
        }
        rec.restore = r.getMetadata().getName();
        var st = r.getStatus();
        rec.phase = st == null || st.phase == null ? Phase.Pending : st.phase;
        if (st != null) {
            rec.restoredFrom = st.restoredFrom;
            if (st.phase == Phase.Succeeded) {
                String running = st.resumeAt != null ? st.resumeAt : st.completedAt;
                rec.runningAgainAt = running;
                if (running != null) {
                    rec.restoreTook = KubeDuration.format(Duration.between(detected, Instant.parse(running)));
                }
            } else if (st.phase == Phase.Failed) {
                var ready = Conditions.get(st.conditions, Conditions.READY);
                rec.message = ready == null ? null : ready.getMessage();
            }
        }
        return rec;
    }

    /** Events for recoveries that ended since the last look. */
    private void reportEnded(VirtualClusterCheckpointSchedule schedule, RecoveryStatus before, List<VirtualClusterRestore> restores) {
        Map<String, Phase> known = new LinkedHashMap<>();
        if (before.history != null) {
            before.history.forEach(h -> known.put(h.restore, h.phase));
        }
        for (VirtualClusterRestore r : restores) {
            Phase was = known.get(r.getMetadata().getName());
            if (!terminal(r) || (was != null && was.terminal())) {
                continue;
            }
            RecoveryRecord rec = record(r, services.clock().instant());
            if (r.getStatus().phase == Phase.Succeeded) {
                services.metrics().recoveryFinished("succeeded", rec.restoredFrom == null ? "none" : rec.restoredFrom.name());
                services.events().normal(schedule, Reasons.RECOVERED, "the VC runs again from " + rec.checkpoint + " (" + rec.restoredFrom + "), "
                        + rec.restoreTook + " after the failure was seen; work lost since the cut: " + rec.lostWork);
            } else {
                services.metrics().recoveryFinished("failed", "none");
                services.events().warning(schedule, Reasons.RECOVERY_FAILED, "restore " + rec.restore + " from " + rec.checkpoint + " failed: "
                        + rec.message);
            }
        }
    }

    /**
     * The checkpoint to restore from: the newest of the schedule's that is ready to use, passing over those a recovery
     * already failed to restore from since the last one that worked.
     */
    private static Optional<VirtualClusterCheckpoint> source(List<VirtualClusterCheckpoint> children, List<VirtualClusterRestore> restores) {
        Set<String> failedFrom = new HashSet<>();
        for (VirtualClusterRestore r : restores) {
            if (r.getStatus() != null && r.getStatus().phase == Phase.Succeeded) {
                failedFrom.clear();
            } else if (r.getStatus() != null && r.getStatus().phase == Phase.Failed) {
                failedFrom.add(r.getSpec().checkpointName);
            }
        }
        return children.stream().filter(c -> c.getStatus() != null && c.getStatus().phase == Phase.Succeeded
                        && Boolean.TRUE.equals(c.getStatus().readyToUse) && c.getStatus().suspendAt != null && c.getStatus().vms != null
                        && !c.getStatus().vms.isEmpty() && !failedFrom.contains(c.getMetadata().getName()))
                .max(Comparator.comparing(c -> Instant.parse(c.getStatus().suspendAt)));
    }

    /** A restore in progress that holds one of {@code vms} (a person's, or one of ours the cache did not show yet). */
    private Optional<String> restoreOf(String ns, Set<String> vms) {
        for (VirtualClusterRestore r : services.client().resources(VirtualClusterRestore.class).inNamespace(ns).list().getItems()) {
            if (r.getStatus() != null && r.getStatus().phase == Phase.InProgress && r.getStatus().vms != null
                    && r.getStatus().vms.stream().anyMatch(v -> vms.contains(v.name))) {
                return Optional.of(r.getMetadata().getName());
            }
        }
        return Optional.empty();
    }

    /** Cancels every checkpoint of {@code vms} in progress; returns those not yet ended. */
    private List<String> abortInFlight(VirtualClusterCheckpointSchedule schedule, Set<String> vms, String failure) {
        List<String> inFlight = new ArrayList<>();
        for (VirtualClusterCheckpoint c : services.client().resources(VirtualClusterCheckpoint.class).inNamespace(schedule.getMetadata().getNamespace())
                .list().getItems()) {
            if (c.getStatus() == null || c.getStatus().phase != Phase.InProgress || c.getStatus().vms == null
                    || c.getStatus().vms.stream().noneMatch(v -> vms.contains(v.name))) {
                continue;
            }
            String key = ProtocolRuns.key(c);
            if (services.runs().cancelled(key) == null) {
                String message = "aborted: the VC is being recovered by schedule " + schedule.getMetadata().getName() + " (" + failure + ")";
                services.runs().cancel(key, Reasons.ABORTED_FOR_RECOVERY, message);
                services.events().normal(schedule, Reasons.ABORTED_FOR_RECOVERY, "aborting checkpoint " + c.getMetadata().getName()
                        + " in flight before restoring the VC");
            }
            inFlight.add(c.getMetadata().getName());
        }
        return inFlight;
    }

    private String createRestore(VirtualClusterCheckpointSchedule schedule, VirtualClusterCheckpoint cp, String failure, Instant seen,
                                 List<String> aborted) {
        String name = schedule.getMetadata().getName() + "-recovery-" + NAME_TIME.format(seen);
        Map<String, String> annotations = new LinkedHashMap<>();
        annotations.put(MekhaApi.RECOVERY_ANNOTATION, failure);
        annotations.put(DETECTED_AT, seen.toString());
        annotations.put(CUT_AT, cp.getStatus().suspendAt);
        if (aborted != null && !aborted.isEmpty()) {
            annotations.put(ABORTED, String.join(",", aborted));
        }
        VirtualClusterRestore restore = new VirtualClusterRestore();
        restore.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(schedule.getMetadata().getNamespace())
                .withLabels(Map.of(MekhaApi.SCHEDULE_LABEL, schedule.getMetadata().getName())).withAnnotations(annotations).build());
        restore.setSpec(new VirtualClusterRestoreSpec());
        restore.getSpec().checkpointName = cp.getMetadata().getName();
        try {
            services.client().resource(restore).create();
        } catch (KubernetesClientException e) {
            if (e.getCode() != 409) {
                services.events().warning(schedule, Reasons.CREATE_FAILED, "could not create restore " + name + ": " + e.getMessage());
                throw e;
            }
        }
        services.events().normal(schedule, Reasons.RECOVERY_STARTED, "restoring the whole VC from " + cp.getMetadata().getName() + " "
                + cp.getStatus().levels + " (" + name + "), cut at " + cp.getStatus().suspendAt + ", "
                + KubeDuration.format(Duration.between(Instant.parse(cp.getStatus().suspendAt), seen)) + " of work lost");
        return name;
    }
}
