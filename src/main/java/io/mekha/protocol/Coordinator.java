package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.AgentDtos.RestartRequest;
import io.mekha.agent.api.AgentDtos.RestartStatus;
import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.AgentDtos.VmRestartStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.time.TimePolicy;
import io.mekha.agent.transfer.TransferMode;
import io.mekha.storage.StorageLevel;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Predicate;
import org.jboss.logging.Logger;

/**
 * Runs the coordinated checkpoint and restart protocols over a set of agents; knows nothing of
 * Kubernetes. Checkpoint: lock and prepare every VM, MTD live stage everywhere, the global
 * ending condition, suspend every VM at a rendezvous instant Ts, the barrier (every VM captured),
 * then resume every VM at Tr chosen only after the barrier. Any failure before the barrier
 * aborts the checkpoint on every agent, which resumes every VM Mekha paused.
 */
public final class Coordinator implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Coordinator.class);
    private static final Duration POLL = Duration.ofMillis(25);
    /** While VMs are paused every millisecond counts: poll the capture faster. */
    private static final Duration PAUSED_POLL = Duration.ofMillis(5);
    private static final int CLOCK_SAMPLES = 5;

    private final List<AgentClient> agents;
    private final Clock clock;
    private final AgentCalls calls = new AgentCalls("coordinator-call");

    public Coordinator(List<AgentClient> agents, Clock clock) {
        this.agents = List.copyOf(agents);
        this.clock = clock;
    }

    // ---------------------------------------------------------------- checkpoint

    public CheckpointReport checkpoint(String id, List<String> vmNames, CheckpointOptions options, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        if (options.mode() == TransferMode.BACKGROUND_SNAPSHOT && vmNames.size() > 1) {
            throw new CheckpointFailedException("BackgroundSnapshot checkpoints one VM at a time for now: QEMU resumes each VM by"
                    + " itself right after its snapshot starts, so across VMs the cut would not be consistent; use MTD or StopAndCopy");
        }
        VirtualClusterMembers members = VirtualClusterMembers.resolve(vmNames, agents);
        Map<AgentClient, ClockOffset> offsets = offsets(members.agents());
        listener.reached(ProtocolListener.Stage.PREPARING, null);
        listener.step("preparing shadows for " + vmNames.size() + " VMs on " + members.agents().size() + " node(s)");

        Map<AgentClient, CheckpointStatus> prepared = new LinkedHashMap<>();
        List<String> prepareErrors = new ArrayList<>();
        parallel(members.agents(), agent -> agent.prepare(id, prepareRequest(options, members.vmsByAgent().get(agent))))
                .forEach((agent, result) -> {
                    if (result.error() == null) {
                        prepared.put(agent, result.value());
                    } else {
                        prepareErrors.add(result.error().getMessage());
                    }
                });
        if (!prepareErrors.isEmpty()) {
            abortAll(id, prepared.keySet(), "prepare failed elsewhere: " + String.join("; ", prepareErrors));
            throw new CheckpointFailedException("checkpoint " + id + " aborted, every VM left running: " + String.join("; ", prepareErrors));
        }

        try {
            listener.reached(ProtocolListener.Stage.LIVE_STAGE, null);
            listener.step(options.mode().displayName() + " live stage on every VM");
            String liveEnd = awaitGlobalEndingCondition(id, members, options);
            listener.step("global ending condition: " + liveEnd);

            Instant ts = rendezvous(options, offsets);
            listener.reached(ProtocolListener.Stage.SUSPENDING, ts);
            listener.step("suspending every VM at Ts = " + ts);
            requireAll(parallel(members.agents(), agent -> agent.suspend(id, offsets.get(agent).toAgent(ts))), "suspend");
            awaitPhase(id, members, VmPhase.CAPTURED, Duration.between(clock.instant(), ts).plus(options.completionTimeout()), "capture");
            listener.step("barrier: every VM captured");
            listener.reached(ProtocolListener.Stage.CAPTURED, null);
            listener.whileSuspended(id);

            Instant tr = rendezvous(options, offsets);
            listener.reached(ProtocolListener.Stage.RESUMING, tr);
            listener.step("resuming every VM at Tr = " + tr);
            requireAll(parallel(members.agents(), agent -> agent.resume(id, offsets.get(agent).toAgent(tr))), "resume");
            Map<AgentClient, CheckpointStatus> done = awaitPhase(id, members, VmPhase.RESUMED,
                    Duration.between(clock.instant(), tr).plus(Duration.ofSeconds(30)), "resume");
            CheckpointReport report = report(id, members, done, offsets, ts, tr, liveEnd, Duration.between(started, clock.instant()));
            listener.reached(ProtocolListener.Stage.RESUMED, null);
            listener.step("checkpoint " + id + " complete: suspend skew " + report.suspendSkew().toNanos() / 1e6
                    + " ms, resume skew " + report.resumeSkew().toNanos() / 1e6 + " ms");
            return report;
        } catch (CheckpointFailedException e) {
            AbortOutcome outcome = abortAll(id, members.agents(), e.getMessage());
            throw new CheckpointFailedException("checkpoint " + id + " aborted (" + e.getMessage() + "); " + outcome, e);
        } catch (InterruptedException e) {
            AbortOutcome outcome = abortAll(id, members.agents(), "coordinator interrupted");
            InterruptedException told = new InterruptedException("checkpoint " + id + " interrupted; " + outcome);
            told.initCause(e);
            throw told;
        } catch (RuntimeException e) {
            abortAll(id, members.agents(), "coordinator failed: " + e);
            throw e;
        }
    }

    /**
     * Picks up checkpoint {@code id} after the coordinator that started it went away (an operator
     * restart): asks the agents where each VM is. Every VM captured at the cut (paused, shadows
     * complete): resume them all at a new Tr and finish. Every VM already resumed: collect the
     * figures and finish. Anything else (live stage, mixed, an agent that lost the checkpoint):
     * abort on every agent, which resumes every VM it paused, and fail.
     *
     * @param ts the cut instant recorded before the coordinator went away, if it was
     */
    public CheckpointReport adopt(String id, List<String> vmNames, CheckpointOptions options, Instant ts, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        VirtualClusterMembers members = VirtualClusterMembers.resolve(vmNames, agents);
        Map<AgentClient, CheckpointStatus> statuses;
        try {
            statuses = statuses(id, members);
        } catch (CheckpointFailedException e) {
            AbortOutcome outcome = abortAll(id, members.agents(), "coordinator restarted and could not read the checkpoint's state: " + e.getMessage());
            throw new CheckpointFailedException("checkpoint " + id + " aborted after a coordinator restart (" + e.getMessage() + "); " + outcome, e);
        }
        listener.step("picked up checkpoint " + id + ": " + describe(statuses));
        Map<AgentClient, ClockOffset> offsets;
        try {
            offsets = offsets(members.agents());
        } catch (CheckpointFailedException e) {
            AbortOutcome outcome = abortAll(id, members.agents(), "coordinator restarted and could not reach every agent: " + e.getMessage());
            throw new CheckpointFailedException("checkpoint " + id + " aborted after a coordinator restart (" + e.getMessage() + "); " + outcome, e);
        }
        if (allVms(statuses, v -> v.phase() == VmPhase.CAPTURED)) {
            try {
                listener.whileSuspended(id); // what the previous coordinator may not have taken yet (idempotent)
            } catch (CheckpointFailedException e) {
                AbortOutcome outcome = abortAll(id, members.agents(), e.getMessage());
                throw new CheckpointFailedException("checkpoint " + id + " aborted (" + e.getMessage() + "); " + outcome, e);
            }
            Instant tr = rendezvous(options, offsets);
            listener.reached(ProtocolListener.Stage.RESUMING, tr);
            listener.step("every VM captured at the cut; resuming every VM at Tr = " + tr);
            try {
                requireAll(parallel(members.agents(), agent -> agent.resume(id, offsets.get(agent).toAgent(tr))), "resume");
                statuses = awaitPhase(id, members, VmPhase.RESUMED, Duration.between(clock.instant(), tr).plus(Duration.ofSeconds(30)), "resume");
            } catch (CheckpointFailedException e) {
                AbortOutcome outcome = abortAll(id, members.agents(), e.getMessage());
                throw new CheckpointFailedException("checkpoint " + id + " aborted (" + e.getMessage() + "); " + outcome, e);
            }
            return report(id, members, statuses, offsets, ts != null ? ts : firstStop(statuses), tr, "adopted after a coordinator restart",
                    Duration.between(started, clock.instant()));
        }
        if (allVms(statuses, v -> v.phase() == VmPhase.RESUMED)) {
            Instant tr = statuses.values().stream().flatMap(s -> s.vms().stream()).map(VmCheckpointStatus::resumedAt)
                    .filter(java.util.Objects::nonNull).min(Instant::compareTo).orElse(clock.instant());
            return report(id, members, statuses, offsets, ts != null ? ts : firstStop(statuses), tr, "adopted after a coordinator restart",
                    Duration.between(started, clock.instant()));
        }
        String where = describe(statuses);
        AbortOutcome outcome = abortAll(id, members.agents(), "coordinator restarted before the cut");
        throw new CheckpointFailedException("the coordinator restarted while checkpoint " + id + " was before its cut (" + where + "); "
                + (outcome.everywhere() ? "aborted on every agent, every VM left running" : outcome)
                + "; create a new checkpoint");
    }

    private static Instant firstStop(Map<AgentClient, CheckpointStatus> statuses) {
        return statuses.values().stream().flatMap(s -> s.vms().stream()).map(VmCheckpointStatus::stopIssuedAt)
                .filter(java.util.Objects::nonNull).min(Instant::compareTo).orElse(null);
    }

    private static PrepareRequest prepareRequest(CheckpointOptions options, List<String> vms) {
        Map<String, Long> limits = new HashMap<>();
        vms.forEach(v -> {
            if (options.bandwidthLimits().containsKey(v)) {
                limits.put(v, options.bandwidthLimits().get(v));
            }
        });
        return new PrepareRequest(vms, options.mode().name(), options.maxLivePerVm(), options.completionTimeout(),
                options.pauseDeadline(), limits, options.timePolicy().name());
    }

    private String awaitGlobalEndingCondition(String id, VirtualClusterMembers members, CheckpointOptions options)
            throws CheckpointFailedException, InterruptedException {
        Instant deadline = clock.instant().plus(options.globalLiveBound());
        while (true) {
            Map<AgentClient, CheckpointStatus> statuses = statuses(id, members);
            failOnBrokenVm(statuses);
            if (allVms(statuses, v -> v.phase() == VmPhase.LIVE_DONE)) {
                return "every VM met its local ending condition";
            }
            if (!clock.instant().isBefore(deadline)) {
                return "global live-stage bound of " + options.globalLiveBound() + " reached";
            }
            Thread.sleep(POLL.toMillis());
        }
    }

    private Map<AgentClient, CheckpointStatus> awaitPhase(String id, VirtualClusterMembers members, VmPhase phase, Duration timeout,
                                                          String step) throws CheckpointFailedException, InterruptedException {
        Instant deadline = clock.instant().plus(timeout);
        while (true) {
            Map<AgentClient, CheckpointStatus> statuses = statuses(id, members);
            failOnBrokenVm(statuses);
            if (allVms(statuses, v -> v.phase() == phase)) {
                return statuses;
            }
            if (clock.instant().isAfter(deadline)) {
                throw new CheckpointFailedException(step + " did not finish within " + timeout + ": " + describe(statuses));
            }
            Thread.sleep(PAUSED_POLL.toMillis());
        }
    }

    private Map<AgentClient, CheckpointStatus> statuses(String id, VirtualClusterMembers members) throws CheckpointFailedException {
        return requireAll(parallel(members.agents(), agent -> agent.status(id)), "status");
    }

    private static void failOnBrokenVm(Map<AgentClient, CheckpointStatus> statuses) throws CheckpointFailedException {
        for (var entry : statuses.entrySet()) {
            for (VmCheckpointStatus vm : entry.getValue().vms()) {
                if (vm.phase() == VmPhase.FAILED || vm.phase() == VmPhase.ABORTED) {
                    throw new CheckpointFailedException("VM '" + vm.vm() + "' on node " + entry.getKey().node() + " " + vm.phase()
                            + ": " + vm.error());
                }
            }
        }
    }

    private static boolean allVms(Map<AgentClient, CheckpointStatus> statuses, Predicate<VmCheckpointStatus> test) {
        return statuses.values().stream().flatMap(s -> s.vms().stream()).allMatch(test);
    }

    private static String describe(Map<AgentClient, CheckpointStatus> statuses) {
        List<String> parts = new ArrayList<>();
        statuses.forEach((agent, status) -> status.vms().forEach(v -> parts.add(v.vm() + "@" + agent.node() + "=" + v.phase())));
        return String.join(", ", parts);
    }

    /** A rendezvous instant far enough ahead for every agent to hear it in time. */
    private Instant rendezvous(CheckpointOptions options, Map<AgentClient, ClockOffset> offsets) {
        Duration worst = offsets.values().stream().map(ClockOffset::uncertainty).max(Duration::compareTo).orElse(Duration.ZERO);
        // every agent must hear of the instant before it comes: two round trips' worth beyond the base lead
        Duration lead = options.rendezvousLead().plus(worst.multipliedBy(4));
        return clock.instant().plus(lead);
    }

    private CheckpointReport report(String id, VirtualClusterMembers members, Map<AgentClient, CheckpointStatus> done,
                                    Map<AgentClient, ClockOffset> offsets, Instant ts, Instant tr, String liveEnd, Duration took) {
        List<VmCheckpointReport> vms = new ArrayList<>();
        done.forEach((agent, status) -> {
            ClockOffset offset = offsets.get(agent);
            for (VmCheckpointStatus vm : status.vms()) {
                var f = vm.figures();
                vms.add(new VmCheckpointReport(vm.vm(), agent.node(), f, offset.toCoordinator(vm.liveDoneAt()),
                        offset.toCoordinator(f != null && f.stopAt() != null ? f.stopAt() : vm.stopIssuedAt()),
                        offset.toCoordinator(vm.capturedAt()),
                        offset.toCoordinator(f != null && f.resumeAt() != null ? f.resumeAt() : vm.resumedAt()), vm.guestClockAtCut()));
            }
        });
        vms.sort((a, b) -> a.vm().compareTo(b.vm()));
        return new CheckpointReport(id, vms, ts, tr, liveEnd, took);
    }

    /** What an abort reached: every agent, or not those listed (with why). */
    private record AbortOutcome(List<String> unreached) {
        boolean everywhere() {
            return unreached.isEmpty();
        }

        @Override
        public String toString() {
            return everywhere() ? "aborted on every agent: every VM runs and no shadow is kept"
                    : "the abort did not reach " + unreached + "; those agents resume any VM they paused by themselves after the pause deadline";
        }
    }

    /**
     * Aborts the checkpoint on every target; says whether every VM is known to run again. Runs with
     * the thread's interrupt cleared (and restored after): an interrupt is often why we abort, and
     * left set it would fail every abort call before it leaves.
     */
    private AbortOutcome abortAll(String id, Collection<AgentClient> targets, String reason) {
        boolean interrupted = Thread.interrupted();
        try {
            List<String> failed = new ArrayList<>();
            parallel(List.copyOf(targets), agent -> agent.abort(id, reason)).forEach((agent, result) -> {
                if (result.error() != null && result.error().status() != 404) {
                    LOG.warnf("abort of checkpoint %s on node %s failed: %s", id, agent.node(), result.error().getMessage());
                    failed.add("node " + agent.node() + ": " + result.error().getMessage());
                }
            });
            return new AbortOutcome(failed);
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ---------------------------------------------------------------- restart

    /** Restarts every VM of checkpoint {@code id} from its shadow with the checkpoint's time policy. */
    /** How long an agent may take to feed its VMs' level-0 streams to their new QEMUs. */
    private static final Duration LOAD_TIMEOUT = Duration.ofMinutes(10);

    public RestartReport restart(String id, ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        return restart(id, null, null, listener);
    }

    /**
     * Restarts every VM of checkpoint {@code id} from its shadow, all resumed together at a
     * rendezvous instant, then applies {@code policy} to their clocks (null: the checkpoint's own).
     */
    public RestartReport restart(String id, TimePolicy policy, Duration slewPeriod, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        Map<String, AgentClient> chosen = level0Placement(id);
        Map<AgentClient, List<String>> byAgent = new LinkedHashMap<>();
        chosen.forEach((vm, agent) -> byAgent.computeIfAbsent(agent, a -> new ArrayList<>()).add(vm));
        // where level 0 is a stream held in memory (KubeVirt), the slow part (feeding each new QEMU) comes before Tr is chosen
        requireAll(parallel(List.copyOf(byAgent.keySet()), agent -> agent.loadLevel0(id, byAgent.get(agent), LOAD_TIMEOUT)),
                "load from memory");
        return restartHolders(id, byAgent, StorageLevel.L0, policy, slewPeriod, listener, started);
    }

    /**
     * Which node restarts each VM from memory: the node holding the VM's own shadow if it answers,
     * else a node holding a partner copy. Refuses when a VM has no copy, or when a node that does
     * not answer may have held VMs no partner copy covers.
     */
    Map<String, AgentClient> level0Placement(String id) throws CheckpointFailedException {
        Map<String, AgentClient> local = new LinkedHashMap<>();
        Map<String, AgentClient> partner = new LinkedHashMap<>();
        List<String> unreachable = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        parallel(agents, agent -> agent.status(id)).forEach((agent, result) -> {
            if (result.error() != null) {
                if (result.error().unreachable()) {
                    unreachable.add(agent.node());
                } else if (result.error().status() != 404) {
                    problems.add(agent.node() + ": " + result.error().getMessage());
                }
                return;
            }
            for (VmCheckpointStatus vm : result.value().vms()) {
                if (vm.phase() != VmPhase.RESUMED) {
                    problems.add("checkpoint " + id + " is not complete: VM '" + vm.vm() + "' on node " + agent.node() + " is " + vm.phase());
                } else if (vm.shadowHeld()) {
                    local.put(vm.vm(), agent);
                } else {
                    local.putIfAbsent(vm.vm(), null);
                }
            }
        });
        Map<String, String> partnerSources = new HashMap<>();
        parallel(agents, agent -> agent.partners(id)).forEach((agent, result) -> {
            if (result.error() == null) {
                result.value().stream().filter(p -> p.state().equals("held")).forEach(p -> {
                    partner.putIfAbsent(p.vm(), agent);
                    partnerSources.put(p.vm(), p.sourceNode());
                });
            }
        });
        if (!problems.isEmpty()) {
            throw new CheckpointFailedException("cannot restart from checkpoint " + id + ": " + String.join("; ", problems));
        }
        for (String lost : unreachable) {
            if (!partnerSources.containsValue(lost)) {
                throw new CheckpointFailedException("cannot restart from checkpoint " + id + ": the agent on node " + lost
                        + " does not answer and no other node holds a copy of its VMs");
            }
        }
        Map<String, AgentClient> chosen = new LinkedHashMap<>();
        partner.keySet().forEach(vm -> local.putIfAbsent(vm, null));
        for (var entry : local.entrySet()) {
            AgentClient holder = entry.getValue() != null ? entry.getValue() : partner.get(entry.getKey());
            if (holder == null) {
                throw new CheckpointFailedException("cannot restart from checkpoint " + id + ": no node holds VM '" + entry.getKey()
                        + "' in memory any more");
            }
            chosen.put(entry.getKey(), holder);
        }
        if (chosen.isEmpty()) {
            throw new CheckpointFailedException("no agent holds checkpoint " + id);
        }
        return chosen;
    }

    /**
     * Restarts a checkpoint's VMs that {@code holders} have loaded from {@code level} (paused, waiting), all
     * resumed together at a rendezvous instant.
     */
    public RestartReport restartLoaded(String id, List<AgentClient> holders, StorageLevel level, TimePolicy policy, Duration slewPeriod,
                                       ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        Map<AgentClient, List<String>> byAgent = new LinkedHashMap<>();
        holders.forEach(h -> byAgent.put(h, null));
        return restartHolders(id, byAgent, level, policy, slewPeriod, listener, clock.instant());
    }

    private RestartReport restartHolders(String id, Map<AgentClient, List<String>> vmsByAgent, StorageLevel level, TimePolicy policy,
                                         Duration slewPeriod, ProtocolListener listener, Instant started)
            throws CheckpointFailedException, InterruptedException {
        List<AgentClient> holders = List.copyOf(vmsByAgent.keySet());
        Map<AgentClient, ClockOffset> offsets = offsets(holders);
        Instant tr = rendezvous(CheckpointOptions.defaults(), offsets);
        listener.step("restarting checkpoint " + id + " from " + level + " on " + holders.size() + " node(s), resuming together at Tr = " + tr);
        String policyName = policy == null ? null : policy.name();
        requireAll(parallel(holders,
                agent -> agent.restart(id, new RestartRequest(offsets.get(agent).toAgent(tr), policyName, slewPeriod, level,
                        vmsByAgent.get(agent)))), "restart");
        Instant deadline = clock.instant().plus(Duration.ofSeconds(60));
        while (true) {
            Map<AgentClient, RestartStatus> states = requireAll(parallel(holders, agent -> agent.restartStatus(id)),
                    "restart status");
            List<String> failed = new ArrayList<>();
            boolean allRunning = true;
            for (var entry : states.entrySet()) {
                for (VmRestartStatus vm : entry.getValue().vms()) {
                    if (vm.state().equals("failed")) {
                        failed.add(vm.vm() + " on node " + entry.getKey().node() + ": " + vm.error());
                    }
                    allRunning &= vm.state().equals("running");
                }
            }
            if (!failed.isEmpty()) {
                throw new CheckpointFailedException("restart from checkpoint " + id + " failed: " + String.join("; ", failed));
            }
            if (allRunning) {
                Map<String, String> nodes = new HashMap<>();
                Map<String, Instant> resumed = new HashMap<>();
                Map<String, RestartReport.VmClock> clocks = new HashMap<>();
                states.forEach((agent, status) -> status.vms().forEach(vm -> {
                    ClockOffset offset = offsets.get(agent);
                    nodes.put(vm.vm(), agent.node());
                    Instant resumedAt = offset.toCoordinator(vm.resumeEvent() != null ? vm.resumeEvent() : vm.resumedAt());
                    resumed.put(vm.vm(), resumedAt);
                    clocks.put(vm.vm(), new RestartReport.VmClock(vm.timePolicy(), vm.guestClockAtCut(),
                            offset.toCoordinator(vm.hostTimeAtCut()), vm.guestClockAfter(), offset.toCoordinator(vm.hostTimeAfter()),
                            resumedAt, vm.timeNote()));
                }));
                RestartReport report = new RestartReport(id, nodes, tr, resumed, clocks, Duration.between(started, clock.instant()));
                listener.step("restart complete: resume skew " + report.resumeSkew().toNanos() / 1e6 + " ms");
                return report;
            }
            if (clock.instant().isAfter(deadline)) {
                throw new CheckpointFailedException("restart from checkpoint " + id + " did not finish within 60 s");
            }
            Thread.sleep(POLL.toMillis());
        }
    }

    /** Drops a checkpoint's shadows on every agent that holds it. */
    public void discard(String id) {
        parallel(agents, agent -> {
            agent.discard(id);
            return Boolean.TRUE;
        });
    }

    // ---------------------------------------------------------------- plumbing

    private Map<AgentClient, ClockOffset> offsets(List<AgentClient> targets) throws CheckpointFailedException {
        return requireAll(parallel(targets, agent -> ClockOffset.estimate(agent, clock, CLOCK_SAMPLES)), "clock exchange");
    }

    private <T> Map<AgentClient, AgentCalls.Result<T>> parallel(List<AgentClient> targets, AgentCalls.Call<T> call) {
        return calls.parallel(targets, call);
    }

    private static <T> Map<AgentClient, T> requireAll(Map<AgentClient, AgentCalls.Result<T>> results, String step)
            throws CheckpointFailedException {
        return AgentCalls.requireAll(results, step);
    }

    @Override
    public void close() {
        calls.close();
    }
}
