package io.mekha.operator;

import com.cronutils.model.CronType;
import com.cronutils.model.definition.CronDefinitionBuilder;
import com.cronutils.model.time.ExecutionTime;
import com.cronutils.parser.CronParser;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.KubeDuration;
import io.mekha.api.v1alpha1.MekhaApi;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.Retention;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointScheduleStatus;
import io.mekha.operator.service.OperatorServices;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Reconciles VirtualClusterCheckpointSchedules: creates a checkpoint from the template each time
 * the cron schedule comes due (named after the due minute, so a repeated reconcile never makes
 * two), then prunes the schedule's checkpoints per its retention. Times come from the injected
 * clock. Runs missed while the operator was down: only the most recent is made up, as CronJobs do.
 * Deleting a schedule keeps its checkpoints (they carry the {@code mekha.io/schedule} label).
 * With {@code spec.recovery.policy: Automatic} it also watches the VC's instances, launcher pods and nodes and restores
 * the VC when a VM fails ({@link VcRecovery}).
 */
@ControllerConfiguration(name = "virtualclustercheckpointschedule")
public class ScheduleReconciler implements Reconciler<VirtualClusterCheckpointSchedule>, Cleaner<VirtualClusterCheckpointSchedule> {
    private static final CronParser CRON = new CronParser(CronDefinitionBuilder.instanceDefinitionFor(CronType.UNIX));
    /**
     * The shortest gap a schedule may leave between two runs: a VC's checkpoint and its flush to the slower
     * levels take tens of seconds to minutes, and runs closer than this would only queue behind each other.
     */
    public static final Duration MIN_INTERVAL = Duration.ofMinutes(5);
    private static final DateTimeFormatter NAME_TIME = DateTimeFormatter.ofPattern("yyyyMMddHHmm").withZone(ZoneOffset.UTC);

    private final OperatorServices services;
    private final VcRecovery recovery;

    public ScheduleReconciler(OperatorServices services) {
        this.services = services;
        this.recovery = new VcRecovery(services);
    }

    /** A deleted schedule takes its gauges with it; its checkpoints stay (each is deleted on its own, with its data). */
    @Override
    public DeleteControl cleanup(VirtualClusterCheckpointSchedule schedule, Context<VirtualClusterCheckpointSchedule> context) {
        services.metrics().scheduleGone(schedule.getMetadata().getNamespace(), schedule.getMetadata().getName());
        return DeleteControl.defaultDelete();
    }

    /** The VC's instances, launcher pods and nodes, for schedules with automatic recovery ({@link RecoveryEvents}). */
    @Override
    public List<EventSource<?, VirtualClusterCheckpointSchedule>> prepareEventSources(EventSourceContext<VirtualClusterCheckpointSchedule> context) {
        return List.of(new RecoveryEvents(context));
    }

    private UpdateControl<VirtualClusterCheckpointSchedule> refuse(VirtualClusterCheckpointSchedule schedule, String message, Long generation,
                                                                  Instant now) {
        services.status().update(VirtualClusterCheckpointSchedule.class, schedule, st -> {
            st.observedGeneration = generation;
            st.nextScheduleTime = null;
            Conditions.failed(st.conditions, Reasons.INVALID_SCHEDULE, message, generation, now);
        });
        return UpdateControl.noUpdate();
    }

    /** The shortest gap between consecutive runs over the next eight days (every weekly pattern repeats in them). */
    static Duration shortestGap(ExecutionTime times, ZonedDateTime from) {
        ZonedDateTime end = from.plusDays(8);
        Duration shortest = Duration.ofDays(8);
        Optional<ZonedDateTime> previous = times.nextExecution(from);
        while (previous.isPresent() && previous.get().isBefore(end)) {
            Optional<ZonedDateTime> next = times.nextExecution(previous.get());
            if (next.isEmpty()) {
                break;
            }
            Duration gap = Duration.between(previous.get(), next.get());
            if (gap.compareTo(shortest) < 0) {
                shortest = gap;
                if (shortest.compareTo(MIN_INTERVAL) < 0) {
                    break;
                }
            }
            previous = next;
        }
        return shortest;
    }

    @Override
    public UpdateControl<VirtualClusterCheckpointSchedule> reconcile(VirtualClusterCheckpointSchedule schedule,
                                                                     Context<VirtualClusterCheckpointSchedule> context) {
        if (schedule.getStatus() == null) {
            // a real API server keeps no status on a new object
            schedule.setStatus(new VirtualClusterCheckpointScheduleStatus());
        }
        var spec = schedule.getSpec();
        Instant now = services.clock().instant();
        Long generation = schedule.getMetadata().getGeneration();
        ExecutionTime times;
        ZoneId zone;
        try {
            if (spec.schedule == null || spec.template == null || spec.template.spec == null) {
                throw new IllegalArgumentException("spec.schedule and spec.template.spec are required");
            }
            times = ExecutionTime.forCron(CRON.parse(spec.schedule));
            zone = spec.timeZone == null ? ZoneOffset.UTC : ZoneId.of(spec.timeZone);
            if (spec.retention != null) {
                KubeDuration.parse("spec.retention.maxAge", spec.retention.maxAge, null);
            }
        } catch (IllegalArgumentException | DateTimeException e) {
            String message = "cannot read the schedule: " + e.getMessage()
                    + " (spec.schedule takes five cron fields, minute hour day-of-month month day-of-week; spec.timeZone an IANA name)";
            return refuse(schedule, message, generation, now);
        }
        Duration gap = shortestGap(times, now.atZone(zone));
        if (gap.compareTo(MIN_INTERVAL) < 0) {
            return refuse(schedule, "spec.schedule '" + spec.schedule + "' runs " + gap.toMinutes() + "m apart at times; runs must be at least "
                    + MIN_INTERVAL.toMinutes() + "m apart (for example */" + MIN_INTERVAL.toMinutes() + " * * * * or 0 * * * *)", generation, now);
        }
        ZonedDateTime local = now.atZone(zone);
        Instant last = schedule.getStatus().lastScheduleTime != null ? Instant.parse(schedule.getStatus().lastScheduleTime)
                : Instant.parse(schedule.getMetadata().getCreationTimestamp() == null ? now.toString() : schedule.getMetadata().getCreationTimestamp());
        String created = null;
        Instant due = null;
        if (!Boolean.TRUE.equals(spec.suspend)) {
            Optional<ZonedDateTime> mostRecent = times.lastExecution(local.plusNanos(1));
            if (mostRecent.isPresent() && mostRecent.get().toInstant().isAfter(last)) {
                due = mostRecent.get().toInstant();
                created = createCheckpoint(schedule, due);
            }
        }
        List<VirtualClusterCheckpoint> children = children(schedule);
        List<String> pruned = prune(schedule, children, now);
        children.removeIf(c -> pruned.contains(c.getMetadata().getName()));
        Optional<VirtualClusterCheckpoint> lastGood = children.stream()
                .filter(c -> c.getStatus() != null && c.getStatus().phase == Phase.Succeeded).max(Comparator.comparing(this::dueOf));
        Optional<ZonedDateTime> next = times.nextExecution(local);
        VcRecovery.Look look = recovery.look(schedule, children, now);
        List<VirtualClusterCheckpoint> newestFirst = children.stream().sorted(Comparator.comparing(this::dueOf).reversed()).toList();
        int failedInARow = 0;
        for (VirtualClusterCheckpoint c : newestFirst) {
            if (phase(c) == Phase.Failed) {
                failedInARow++;
            } else if (phase(c) == Phase.Succeeded) {
                break;
            }
        }
        services.metrics().scheduleObserved(schedule.getMetadata().getNamespace(), schedule.getMetadata().getName(),
                lastGood.map(this::dueOf).orElse(null), failedInARow, gap);
        Instant dueAt = due;
        String made = created;
        services.status().update(VirtualClusterCheckpointSchedule.class, schedule, st -> {
            st.observedGeneration = generation;
            if (dueAt != null) {
                st.lastScheduleTime = dueAt.toString();
                st.lastCheckpoint = made;
            }
            st.nextScheduleTime = Boolean.TRUE.equals(spec.suspend) ? null : next.map(t -> t.toInstant().toString()).orElse(null);
            st.checkpoints = children.size();
            st.recovery = look.status();
            lastGood.ifPresent(c -> {
                st.lastSuccessfulCheckpoint = c.getMetadata().getName();
                st.lastSuccessfulTime = c.getStatus().completedAt;
            });
            if (Boolean.TRUE.equals(spec.suspend)) {
                Conditions.waiting(st.conditions, Reasons.SUSPENDED, "spec.suspend is true: no new checkpoints", generation, now);
            } else {
                Conditions.succeeded(st.conditions, Reasons.SCHEDULED, "next checkpoint due " + next.map(t -> t.toInstant().toString()).orElse("never"),
                        generation, now);
            }
        });
        Duration wait = next.map(t -> Duration.between(now, t.toInstant())).orElse(services.observeEvery());
        Duration after = wait.compareTo(services.observeEvery()) > 0 || wait.isNegative() ? services.observeEvery() : wait.plusMillis(10);
        if (look.again() != null && look.again().compareTo(after) < 0) {
            after = look.again().plusMillis(10);
        }
        return UpdateControl.<VirtualClusterCheckpointSchedule>noUpdate().rescheduleAfter(after);
    }

    /** Creates the checkpoint due at {@code due} unless it exists; returns its name. */
    private String createCheckpoint(VirtualClusterCheckpointSchedule schedule, Instant due) {
        String name = schedule.getMetadata().getName() + "-" + NAME_TIME.format(due);
        String ns = schedule.getMetadata().getNamespace();
        Map<String, String> labels = new HashMap<>();
        if (schedule.getSpec().template.labels != null) {
            labels.putAll(schedule.getSpec().template.labels);
        }
        labels.put(MekhaApi.SCHEDULE_LABEL, schedule.getMetadata().getName());
        VirtualClusterCheckpoint cp = new VirtualClusterCheckpoint();
        cp.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(ns).withLabels(labels)
                .withAnnotations(Map.of(MekhaApi.SCHEDULED_AT_ANNOTATION, due.toString())).build());
        cp.setSpec(schedule.getSpec().template.spec);
        try {
            services.client().resource(cp).create();
            services.events().normal(schedule, Reasons.CHECKPOINT_CREATED, "created " + name + " (due " + due + ")");
        } catch (KubernetesClientException e) {
            if (e.getCode() != 409) {
                services.events().warning(schedule, Reasons.CREATE_FAILED, "could not create checkpoint " + name + ": " + e.getMessage());
                throw e;
            }
        }
        return name;
    }

    private List<VirtualClusterCheckpoint> children(VirtualClusterCheckpointSchedule schedule) {
        return new ArrayList<>(services.client().resources(VirtualClusterCheckpoint.class).inNamespace(schedule.getMetadata().getNamespace())
                .withLabel(MekhaApi.SCHEDULE_LABEL, schedule.getMetadata().getName()).list().getItems());
    }

    /** Deletes what retention does not keep: beyond the newest keepLast successes, successes older than maxAge (never the newest), old failures. */
    private List<String> prune(VirtualClusterCheckpointSchedule schedule, List<VirtualClusterCheckpoint> children, Instant now) {
        Retention r = schedule.getSpec().retention == null ? new Retention() : schedule.getSpec().retention;
        Duration maxAge = KubeDuration.parse("spec.retention.maxAge", r.maxAge, null);
        int failedKeep = r.failedHistoryLimit == null ? 1 : r.failedHistoryLimit;
        List<VirtualClusterCheckpoint> succeeded = children.stream().filter(c -> phase(c) == Phase.Succeeded)
                .sorted(Comparator.comparing(this::dueOf).reversed()).toList();
        List<VirtualClusterCheckpoint> failed = children.stream().filter(c -> phase(c) == Phase.Failed)
                .sorted(Comparator.comparing(this::dueOf).reversed()).toList();
        List<VirtualClusterCheckpoint> doomed = new ArrayList<>();
        for (int i = 0; i < succeeded.size(); i++) {
            VirtualClusterCheckpoint c = succeeded.get(i);
            boolean beyondCount = r.keepLast != null && i >= r.keepLast;
            boolean tooOld = maxAge != null && i > 0 && dueOf(c).isBefore(now.minus(maxAge));
            if (beyondCount || tooOld) {
                doomed.add(c);
            }
        }
        for (int i = failedKeep; i < failed.size(); i++) {
            doomed.add(failed.get(i));
        }
        List<String> names = new ArrayList<>();
        for (VirtualClusterCheckpoint c : doomed) {
            services.client().resource(c).delete();
            names.add(c.getMetadata().getName());
            services.events().normal(schedule, Reasons.CHECKPOINT_PRUNED, "deleted " + c.getMetadata().getName() + " (" + phase(c) + ", due " + dueOf(c)
                    + ") per the retention policy");
        }
        return names;
    }

    private static Phase phase(VirtualClusterCheckpoint c) {
        return c.getStatus() == null ? null : c.getStatus().phase;
    }

    private Instant dueOf(VirtualClusterCheckpoint c) {
        var annotations = c.getMetadata().getAnnotations();
        if (annotations != null && annotations.get(MekhaApi.SCHEDULED_AT_ANNOTATION) != null) {
            return Instant.parse(annotations.get(MekhaApi.SCHEDULED_AT_ANNOTATION));
        }
        return c.getMetadata().getCreationTimestamp() == null ? Instant.EPOCH : Instant.parse(c.getMetadata().getCreationTimestamp());
    }
}
