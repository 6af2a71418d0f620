package io.mekha.local;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.api.v1alpha1.KubeDuration;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.RecoveryBudget;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Automatic recovery of a local VC: watches every VM through the agents (a VM whose QEMU exited is {@code dead} on its
 * agent; one that is gone from its agent, or on an agent that stopped answering past a grace period, has failed too) and,
 * when one fails, aborts any checkpoint in flight and restores the whole VC from its newest complete checkpoint, at the
 * fastest level that still holds it whole (L0, else L1, else L2), as {@code mekha restore} does. A {@link RecoveryBudget}
 * keeps a VC that fails again after every restore from being restored for ever: past its limit, recovery stops with the
 * reason. Every step goes to {@code events}; {@link #run} returns the history.
 */
public final class VcProtector {
    /** How long a restore may shift guest clocks under the Slew policy, as {@code mekha restore}'s default. */
    private static final Duration SLEW = Duration.ofSeconds(30);

    /** How often the VMs are looked at, and how long an agent may stay silent before its node counts as lost. */
    public record Settings(Duration poll, Duration nodeGrace) {
        public Settings {
            if (poll.isNegative() || poll.isZero()) {
                throw new IllegalArgumentException("the poll interval must be positive (it is " + poll + ")");
            }
        }
    }

    /**
     * One recovery: when the failure was seen, what failed and why, the checkpoint and level it restored from, when every
     * VM ran again (null if the restore failed, then {@code error} says why), and the work lost (from the checkpoint's cut to
     * the failure being seen).
     */
    public record Recovery(Instant lastHealthyAt, Instant detectedAt, List<String> failed, String cause, String checkpoint,
                           StorageLevel level, Instant runningAt, Duration workLost, String error) {
        /** From the failure being seen to every VM running again. */
        public Duration restore() {
            return runningAt == null ? null : Duration.between(detectedAt, runningAt);
        }
    }

    /** Why {@link #run} returned (null: it was asked to stop), and every recovery it made. */
    public record Outcome(List<Recovery> history, String stoppedBecause) {}

    private record Failure(List<String> vms, String cause, Set<String> checkpointsInFlight) {}

    private final String vc;
    private final List<AgentClient> agents;
    private final List<String> vms;
    private final Supplier<List<CheckpointReport>> checkpoints;
    private final Function<String, StorageTarget> level2;
    private final CheckpointStorage storage;
    private final Settings settings;
    private final RecoveryBudget budget;
    private final Clock clock;
    private final Consumer<String> events;
    private final Map<AgentClient, Instant> silentSince = new LinkedHashMap<>();
    private final List<Recovery> history = new java.util.concurrent.CopyOnWriteArrayList<>();

    /**
     * @param checkpoints the VC's complete checkpoints, oldest first
     * @param level2 where a checkpoint's level-2 copy is, or null
     */
    public VcProtector(String vc, List<AgentClient> agents, List<String> vms, Supplier<List<CheckpointReport>> checkpoints,
                       Function<String, StorageTarget> level2, CheckpointStorage storage, Settings settings, RecoveryBudget budget,
                       Clock clock, Consumer<String> events) {
        this.vc = vc;
        this.agents = List.copyOf(agents);
        this.vms = List.copyOf(vms);
        this.checkpoints = checkpoints;
        this.level2 = level2;
        this.storage = storage;
        this.settings = settings;
        this.budget = budget;
        this.clock = clock;
        this.events = events;
    }

    /** Watches and recovers until {@code keepGoing} says stop, or recovery cannot go on (then the outcome says why). */
    public Outcome run(BooleanSupplier keepGoing) throws InterruptedException {
        return run(keepGoing, r -> { });
    }

    /** As {@link #run(BooleanSupplier)}, telling {@code recorded} of each recovery as it ends. */
    public Outcome run(BooleanSupplier keepGoing, Consumer<Recovery> recorded) throws InterruptedException {
        events.accept("protecting VC '" + vc + "' (" + String.join(", ", vms) + "): looking every " + KubeDuration.format(settings.poll())
                + "; at most " + budget.describe());
        if (checkpoints.get().isEmpty()) {
            events.accept("VC '" + vc + "' has no checkpoint yet: a failure before the first one cannot be recovered (mekha checkpoint)");
        }
        Instant lastHealthy = clock.instant();
        while (keepGoing.getAsBoolean()) {
            Failure failure = check();
            Instant now = clock.instant();
            if (failure == null) {
                lastHealthy = now;
                Thread.sleep(settings.poll().toMillis());
                continue;
            }
            RecoveryBudget.Decision decision = budget.next(now);
            if (decision.exhausted()) {
                events.accept("recovery stopped: " + failure.cause() + "; " + decision.refusal());
                return new Outcome(history(), failure.cause() + "; " + decision.refusal());
            }
            if (!decision.allowed()) {
                events.accept(failure.cause() + "; waiting " + KubeDuration.format(decision.delay()) + " (the backoff after the last recovery)");
                Thread.sleep(Math.max(1, decision.delay().toMillis()));
                continue;
            }
            events.accept("detected: " + failure.cause());
            Optional<CheckpointReport> newest = checkpoints.get().stream().reduce((a, b) -> b);
            if (newest.isEmpty()) {
                String why = failure.cause() + "; VC '" + vc + "' has no complete checkpoint to restore from: take checkpoints"
                        + " (mekha checkpoint) while it is protected";
                events.accept("recovery stopped: " + why);
                return new Outcome(history(), why);
            }
            budget.started(now);
            abort(failure);
            Recovery recovery = recover(failure, newest.get(), lastHealthy, now);
            history.add(recovery);
            recorded.accept(recovery);
            lastHealthy = clock.instant();
        }
        return new Outcome(history(), null);
    }

    /** The recoveries made so far (each once it ended), oldest first; safe to read while {@link #run} runs. */
    public List<Recovery> history() {
        return List.copyOf(history);
    }

    private Recovery recover(Failure failure, CheckpointReport from, Instant lastHealthy, Instant detected) throws InterruptedException {
        Duration lost = Duration.between(from.suspendAt(), detected);
        events.accept("restoring VC '" + vc + "' from checkpoint " + from.id() + " (cut " + from.suspendAt() + ", "
                + KubeDuration.format(lost) + " of work lost)");
        try {
            CheckpointStorage.RestoreReport report = storage.restore(vc, from.id(), null, level2.apply(from.id()), null, SLEW,
                    step -> events.accept("  " + step));
            Instant running = clock.instant();
            events.accept("recovered: every VM of VC '" + vc + "' runs again from " + from.id() + " at " + report.level() + ", "
                    + Duration.between(detected, running).toMillis() + " ms after the failure was seen");
            return new Recovery(lastHealthy, detected, failure.vms(), failure.cause(), from.id(), report.level(), running, lost, null);
        } catch (CheckpointFailedException e) {
            events.accept("recovery from " + from.id() + " failed: " + e.getMessage());
            return new Recovery(lastHealthy, detected, failure.vms(), failure.cause(), from.id(), null, null, lost, e.getMessage());
        }
    }

    /** Every checkpoint in flight on the failed VC is called off first: its cut can no longer be whole. */
    private void abort(Failure failure) {
        for (String id : failure.checkpointsInFlight()) {
            events.accept("aborting checkpoint " + id + " in flight");
            for (AgentClient agent : agents) {
                try {
                    agent.abort(id, "VC '" + vc + "' failed (" + failure.cause() + "); it is being restored");
                } catch (AgentCallException e) {
                    // not on that node, or the node is the one lost
                }
            }
        }
    }

    /**
     * The failure seen now, or null when every VM is fine. A VM fails when its QEMU exited ({@code dead} on its agent), or
     * when no agent that answers has it: at once if every agent answers, else once an agent has been silent for the node
     * grace (its node counts as lost). A silent agent whose VMs all run elsewhere now (restored from partner copies) is no
     * failure.
     */
    private Failure check() {
        Map<String, VmInfo> seen = new LinkedHashMap<>();
        List<String> silent = new ArrayList<>();
        boolean silentPastGrace = false;
        Instant now = clock.instant();
        for (AgentClient agent : agents) {
            try {
                for (VmInfo vm : agent.vms()) {
                    seen.putIfAbsent(vm.name(), vm);
                }
                silentSince.remove(agent);
            } catch (AgentCallException e) {
                Instant since = silentSince.computeIfAbsent(agent, a -> now);
                Duration quiet = Duration.between(since, now);
                silent.add("node " + agent.node() + "'s agent has not answered for " + quiet.toMillis() + " ms (" + e.getMessage() + ")");
                silentPastGrace |= quiet.compareTo(settings.nodeGrace()) >= 0;
            }
        }
        List<String> causes = new ArrayList<>();
        Set<String> failed = new LinkedHashSet<>();
        Set<String> inFlight = new LinkedHashSet<>();
        List<String> missing = new ArrayList<>();
        for (String name : vms) {
            VmInfo vm = seen.get(name);
            if (vm == null) {
                missing.add(name);
                continue;
            }
            if (vm.checkpoint() != null) {
                inFlight.add(vm.checkpoint());
            }
            if (vm.state().equals("dead")) {
                causes.add("VM " + name + "'s QEMU (pid " + vm.pid() + ") on node " + vm.node() + " exited");
                failed.add(name);
            }
        }
        if (!missing.isEmpty()) {
            if (silent.isEmpty()) {
                causes.add("VM(s) " + String.join(", ", missing) + " on no node");
                failed.addAll(missing);
            } else if (silentPastGrace) {
                causes.add("VM(s) " + String.join(", ", missing) + " unreachable: " + String.join("; ", silent) + " (its node is lost)");
                failed.addAll(missing);
            }
            // else: an agent is silent for less than the grace; look again
        }
        return causes.isEmpty() ? null : new Failure(List.copyOf(failed), String.join("; ", causes), inFlight);
    }
}
