package io.mekha.operator.service;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.VmCheckpointReport;
import java.time.Duration;

/** What the operator counts and measures, through Micrometer (exported for Prometheus at /q/metrics). */
public final class OperatorMetrics {
    private final MeterRegistry registry;
    /** Per schedule (namespace/name): last success (epoch seconds), consecutive failures, the shortest gap between runs. */
    /** A schedule's gauges and the values they read: last success, consecutive failures, interval. */
    private record ScheduleGauges(double[] values, java.util.List<io.micrometer.core.instrument.Meter> meters) {}

    private final java.util.Map<String, ScheduleGauges> schedules = new java.util.concurrent.ConcurrentHashMap<>();

    public OperatorMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    public void checkpointFinished(String result, String reason) {
        Counter.builder("mekha.checkpoints").description("Checkpoints by result").tag("result", result).tag("reason", reason)
                .register(registry).increment();
    }

    /** @param level the level the restore used, or {@code none} when it failed before using one */
    public void restoreFinished(String result, String reason, String level) {
        Counter.builder("mekha.restores").description("Restores by result and level").tag("result", result).tag("reason", reason)
                .tag("level", level).register(registry).increment();
    }

    /** An automatic recovery of a schedule's VC that ended: its restore's result and level. */
    public void recoveryFinished(String result, String level) {
        Counter.builder("mekha.recoveries").description("Automatic recoveries of virtual clusters by result and level").tag("result", result)
                .tag("level", level).register(registry).increment();
    }

    /** The figures of a checkpoint that reached its cut and resumed every VM. */
    public void checkpointTaken(CheckpointReport report, Duration took) {
        for (VmCheckpointReport vm : report.vms()) {
            Duration paused = paused(vm);
            if (paused != null) {
                Timer.builder("mekha.checkpoint.paused").description("Time each VM was paused for a checkpoint").register(registry)
                        .record(paused);
            }
            if (vm.figures() != null) {
                DistributionSummary.builder("mekha.checkpoint.bytes").description("Bytes of VM state captured per VM").baseUnit("bytes")
                        .register(registry).record(vm.figures().bytesTransferred());
            }
        }
        Timer.builder("mekha.checkpoint.suspend.skew").description("Spread of the VMs' stop instants").register(registry)
                .record(report.suspendSkew());
        Timer.builder("mekha.checkpoint.resume.skew").description("Spread of the VMs' resume instants").register(registry)
                .record(report.resumeSkew());
        Timer.builder("mekha.checkpoint.duration").description("From start of the protocol until every VM resumed").register(registry)
                .record(took);
    }

    public void timeToDurable(Duration d) {
        Timer.builder("mekha.checkpoint.durable").description("From the cut until the durable level held every VM").register(registry).record(d);
    }

    public void restoreResumeSkew(Duration skew) {
        Timer.builder("mekha.restore.resume.skew").description("Spread of the VMs' resume instants after a restore").register(registry)
                .record(skew);
    }

    /**
     * A schedule as its controller last saw it: when its newest checkpoint that Succeeded was due (null: none yet), how many of
     * its newest checkpoints Failed in a row, and the shortest gap between its runs. Exported as gauges labelled with the
     * schedule, for the alert on a schedule missing its runs.
     */
    public void scheduleObserved(String namespace, String name, java.time.Instant lastSuccess, int consecutiveFailures, Duration interval) {
        String key = namespace + "/" + name;
        double[] values = schedules.computeIfAbsent(key, k -> {
            double[] v = new double[] {Double.NaN, 0, 0};
            io.micrometer.core.instrument.Tags tags = io.micrometer.core.instrument.Tags.of("namespace", namespace, "schedule", name);
            return new ScheduleGauges(v, java.util.List.of(
                    io.micrometer.core.instrument.Gauge.builder("mekha.schedule.last.success", v, x -> x[0]).tags(tags).baseUnit("seconds")
                            .description("When the schedule's newest successful checkpoint was due (Unix time; NaN: none yet)").register(registry),
                    io.micrometer.core.instrument.Gauge.builder("mekha.schedule.consecutive.failures", v, x -> x[1]).tags(tags)
                            .description("The schedule's newest checkpoints that failed in a row").register(registry),
                    io.micrometer.core.instrument.Gauge.builder("mekha.schedule.interval", v, x -> x[2]).tags(tags).baseUnit("seconds")
                            .description("The shortest gap between the schedule's runs").register(registry)));
        }).values();
        values[0] = lastSuccess == null ? Double.NaN : lastSuccess.getEpochSecond();
        values[1] = consecutiveFailures;
        values[2] = interval.toSeconds();
    }

    /**
     * A deleted schedule's gauges go with it: left behind, its last success would age until the alert on a schedule
     * missing its runs fired for a schedule that no longer exists.
     */
    public void scheduleGone(String namespace, String name) {
        ScheduleGauges gone = schedules.remove(namespace + "/" + name);
        if (gone != null) {
            gone.meters().forEach(registry::remove);
        }
    }

    /** How long the guest did not run: QEMU's STOP to RESUME events, else Mekha's stop to cont. */
    public static Duration paused(VmCheckpointReport vm) {
        if (vm.figures() == null) {
            return null;
        }
        return vm.figures().guestPaused() != null ? vm.figures().guestPaused() : vm.figures().mekhaPaused();
    }
}
