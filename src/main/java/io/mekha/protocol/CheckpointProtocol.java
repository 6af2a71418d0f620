package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.model.TransferMode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * The coordinated checkpoint: lock and prepare every VM, the live stage everywhere, the global
 * ending condition, suspend every VM at a rendezvous instant Ts, the barrier (every VM captured),
 * then resume every VM at Tr chosen only after the barrier. Any failure before the barrier aborts
 * the checkpoint on every agent, which resumes every VM Mekha paused. Also picks up a checkpoint
 * whose coordinator went away ({@link #adopt}).
 */
final class CheckpointProtocol {
    private static final Duration RESUME_TIMEOUT = Duration.ofSeconds(30);

    private final List<AgentClient> agents;
    private final Clock clock;
    private final AgentCalls calls;
    private final Rendezvous rendezvous;
    private final Aborts aborts;
    private final PhaseWatch watch;
    private final ArmedFanOut suspends;
    private final ArmedFanOut resumes;

    CheckpointProtocol(List<AgentClient> agents, Clock clock, AgentCalls calls, Rendezvous rendezvous, Aborts aborts) {
        this.agents = agents;
        this.clock = clock;
        this.calls = calls;
        this.rendezvous = rendezvous;
        this.aborts = aborts;
        this.watch = new PhaseWatch(clock, calls);
        this.suspends = new ArmedFanOut(calls, "suspend", "", RESUME_TIMEOUT, AgentClient::suspend);
        // an armed resume answers once its node's VMs run again: no second round of calls to hear it
        this.resumes = new ArmedFanOut(calls, "resume", "?wait=resumed", RESUME_TIMEOUT, AgentClient::resume);
    }

    CheckpointReport checkpoint(String id, List<String> vmNames, CheckpointOptions options, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        VirtualClusterMembers members = VirtualClusterMembers.resolve(vmNames, agents);
        Map<AgentClient, ClockOffset> offsets = new LinkedHashMap<>(rendezvous.offsets(members.agents()));
        listener.reached(ProtocolListener.Stage.PREPARING, null);
        listener.step("preparing shadows for " + vmNames.size() + " VMs on " + members.agents().size() + " node(s)");

        Map<AgentClient, CheckpointStatus> prepared = new LinkedHashMap<>();
        List<String> prepareErrors = new ArrayList<>();
        calls.parallel(members.agents(), agent -> agent.prepare(id, prepareRequest(options, members.vmsByAgent().get(agent))))
                .forEach((agent, result) -> {
                    if (result.error() == null) {
                        prepared.put(agent, result.value());
                    } else {
                        prepareErrors.add(result.error().getMessage());
                    }
                });
        if (!prepareErrors.isEmpty()) {
            aborts.abortAll(id, prepared.keySet(), "prepare failed elsewhere: " + String.join("; ", prepareErrors));
            throw new CheckpointFailedException("checkpoint " + id + " aborted, every VM left running: " + String.join("; ", prepareErrors));
        }

        boolean resumeSent = false;
        // every agent's suspend and resume are opened now, Ts and Tr written into them once chosen: near the cut, each
        // agent hears its instant in one small write, and nothing is opened
        try (ArmedFanOut.Armed suspend = suspends.arm(id, members.agents()); ArmedFanOut.Armed resume = resumes.arm(id, members.agents())) {
            listener.reached(ProtocolListener.Stage.LIVE_STAGE, null);
            listener.step(options.mode().displayName() + " live stage on every VM");
            String liveEnd = awaitGlobalEndingCondition(id, members, options);
            listener.step("global ending condition: " + liveEnd);

            // the clocks again, now, under the live stage's load: a clock stepped since, or calls slower than at the start,
            // would make an agent stop early or late
            Map<AgentClient, ClockOffset> now = rendezvous.offsets(members.agents());
            offsets.putAll(now);
            Instant ts = rendezvous.generousInstant(options.rendezvousLead(), offsets, suspends.writeOut(members.agents().size()));
            listener.reached(ProtocolListener.Stage.SUSPENDING, ts);
            listener.step("suspending every VM at Ts = " + ts);
            Instant suspendSent = clock.instant();
            AgentCalls.requireAll(suspend.send(ts, agent -> offsets.get(agent).toAgent(ts), false), "suspend");
            if (clock.instant().isAfter(ts)) {
                listener.step("the suspend reached the last agent " + Duration.between(ts, clock.instant()).toMillis()
                        + " ms after Ts (sent " + Duration.between(suspendSent, ts).toMillis() + " ms before it): its VMs stop late");
            }
            PhaseWatch.Outcome barrier = awaitOutcome(id, members, VmPhase.CAPTURED,
                    Duration.between(clock.instant(), ts).plus(options.completionTimeout()), "capture");
            // how long the answer that completed the barrier took to arrive: the way to the agents at this moment
            Duration recentWay = barrier.lastArrival(offsets);
            listener.step("barrier: every VM captured");
            listener.reached(ProtocolListener.Stage.CAPTURED, null);
            listener.whileSuspended(id);

            // the clocks once more, just before Tr: a node whose clock stepped since Ts would otherwise resume early or late
            // by the step while the skew, converted with the old offsets, read ~0. Few exchanges: the VMs are paused meanwhile
            Map<AgentClient, ClockOffset> atTr = remeasure(members, offsets, listener);
            Instant tr = rendezvous.resumeInstant(atTr, recentWay, resumes.writeOut(members.agents().size()));
            listener.reached(ProtocolListener.Stage.RESUMING, tr);
            listener.step("resuming every VM at Tr = " + tr);
            resumeSent = true;
            Map<AgentClient, CheckpointStatus> done = new LinkedHashMap<>(
                    AgentCalls.requireAll(resume.send(tr, agent -> atTr.get(agent).toAgent(tr), true), "resume"));
            failOnBrokenVm(done);
            // an armed resume answers once its VMs run again; an agent resumed by an ordinary call is asked again
            List<AgentClient> unresumed = done.entrySet().stream()
                    .filter(e -> !e.getValue().vms().stream().allMatch(v -> v.phase().runsAgain())).map(Map.Entry::getKey).toList();
            Duration streaming = options.mode() == TransferMode.BACKGROUND_SNAPSHOT ? options.completionTimeout() : Duration.ZERO;
            if (!unresumed.isEmpty()) {
                done.putAll(watch.await(id, unresumed, VmPhase.RESUMED, tr.plus(RESUME_TIMEOUT).plus(streaming)).statuses());
                if (!allVms(done, v -> v.phase().runsAgain())) {
                    throw new CheckpointFailedException("resume did not finish within " + RESUME_TIMEOUT + ": " + describe(done));
                }
            }
            done.putAll(awaitStreamed(id, done, streaming, listener));
            CheckpointReport report = report(id, done, offsets, atTr, ts, tr, liveEnd, Duration.between(started, clock.instant()));
            listener.reached(ProtocolListener.Stage.RESUMED, null);
            listener.step("checkpoint " + id + " complete: suspend skew " + report.suspendSkew().toNanos() / 1e6
                    + " ms, resume skew " + report.resumeSkew().toNanos() / 1e6 + " ms");
            return report;
        } catch (CheckpointFailedException e) {
            // after the resume, VMs whose copies completed keep them past an abort: the failed checkpoint is discarded too
            Aborts.Outcome outcome = resumeSent ? aborts.abortAndDiscardAll(id, members.agents(), e.getMessage())
                    : aborts.abortAll(id, members.agents(), e.getMessage());
            throw new CheckpointFailedException("checkpoint " + id + " aborted (" + e.getMessage() + "); " + outcome, e);
        } catch (InterruptedException e) {
            Aborts.Outcome outcome = aborts.abortAll(id, members.agents(), "coordinator interrupted");
            InterruptedException told = new InterruptedException("checkpoint " + id + " interrupted; " + outcome);
            told.initCause(e);
            throw told;
        } catch (RuntimeException e) {
            aborts.abortAll(id, members.agents(), "coordinator failed: " + e);
            throw e;
        }
    }

    /**
     * A background snapshot's VMs run again while their RAM as at the cut streams on to level 0: the checkpoint is complete
     * only once every copy is (RESUMED), heard as it happens; a copy that fails fails the checkpoint (the caller aborts it on
     * every agent, which drops the copies; the VMs run). {@code done}'s agents whose VMs are all RESUMED are not asked again.
     */
    private Map<AgentClient, CheckpointStatus> awaitStreamed(String id, Map<AgentClient, CheckpointStatus> done, Duration limit,
                                                             ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        List<AgentClient> streaming = done.entrySet().stream()
                .filter(e -> !e.getValue().vms().stream().allMatch(v -> v.phase() == VmPhase.RESUMED)).map(Map.Entry::getKey).toList();
        if (streaming.isEmpty()) {
            return Map.of();
        }
        listener.reached(ProtocolListener.Stage.STREAMING, null);
        listener.step("every VM runs again; their RAM as at the cut streams on to level 0 (the checkpoint is complete once it is there)");
        PhaseWatch.Outcome outcome = watch.await(id, streaming, VmPhase.RESUMED, clock.instant().plus(limit));
        if (!outcome.reached()) {
            throw new CheckpointFailedException("the background copies did not complete within " + limit + " (completion timeout): "
                    + describe(outcome.statuses()));
        }
        return outcome.statuses();
    }

    /** Exchanges per agent when the clocks are measured again before Tr, with every VM paused. */
    static final int CLOCK_SAMPLES_AT_TR = 3;
    /** A clock that moved more than this (and more than twice the measurements' error) between Ts and Tr is said to have stepped. */
    static final Duration STEP_NOTICED = Duration.ofMillis(5);

    private Map<AgentClient, ClockOffset> remeasure(VirtualClusterMembers members, Map<AgentClient, ClockOffset> atTs, ProtocolListener listener)
            throws CheckpointFailedException {
        long start = System.nanoTime();
        Map<AgentClient, ClockOffset> measured = rendezvous.offsets(members.agents(), CLOCK_SAMPLES_AT_TR);
        // a clock that did not move keeps the offset measured before Ts (more exchanges, off the pause: a smaller error,
        // so a shorter Tr lead); one that moved takes the new one
        Map<AgentClient, ClockOffset> atTr = new LinkedHashMap<>(atTs);
        for (AgentClient agent : members.agents()) {
            ClockOffset before = atTs.get(agent);
            ClockOffset now = measured.get(agent);
            Duration moved = now.offset().minus(before.offset()).abs();
            Duration noise = before.uncertainty().plus(now.uncertainty()).multipliedBy(2);
            if (moved.compareTo(STEP_NOTICED) > 0 && moved.compareTo(noise) > 0) {
                atTr.put(agent, now);
                listener.step("the clock of node " + agent.node() + " moved " + moved.toMillis() + " ms between Ts and Tr (stepped?): Tr is"
                        + " given in its clock as it reads now, and its resume is reported in that clock");
            }
        }
        listener.step("clocks measured again before Tr in " + Duration.ofNanos(System.nanoTime() - start).toMillis() + " ms");
        return atTr;
    }

    private Map<AgentClient, CheckpointStatus> resumeAll(String id, VirtualClusterMembers members, Map<AgentClient, ClockOffset> offsets,
                                                         Instant tr, CheckpointOptions options, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        listener.reached(ProtocolListener.Stage.RESUMING, tr);
        listener.step("resuming every VM at Tr = " + tr);
        AgentCalls.requireAll(calls.parallel(members.agents(), agent -> agent.resume(id, offsets.get(agent).toAgent(tr))), "resume");
        // a background snapshot's copies stream on after the resume, within the completion timeout
        Duration streaming = options.mode() == TransferMode.BACKGROUND_SNAPSHOT ? options.completionTimeout() : Duration.ZERO;
        return awaitPhase(id, members, VmPhase.RESUMED, Duration.between(clock.instant(), tr).plus(RESUME_TIMEOUT).plus(streaming), "resume");
    }

    /**
     * Picks up checkpoint {@code id} after the coordinator that started it went away (an operator
     * restart): asks the agents where each VM is. Every VM captured at the cut (paused, level-0 copies
     * complete): resume them all at a new Tr and finish. Every VM already resumed: collect the
     * figures and finish. Anything else (live stage, mixed, an agent that lost the checkpoint):
     * abort on every agent, which resumes every VM it paused, and fail.
     *
     * @param ts the cut instant recorded before the coordinator went away, if it was
     */
    CheckpointReport adopt(String id, List<String> vmNames, CheckpointOptions options, Instant ts, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        VirtualClusterMembers members = VirtualClusterMembers.resolve(vmNames, agents);
        Map<AgentClient, CheckpointStatus> statuses;
        Map<AgentClient, ClockOffset> offsets;
        try {
            statuses = statuses(id, members);
        } catch (CheckpointFailedException e) {
            throw abortAfterRestart(id, members, "could not read the checkpoint's state", e);
        }
        listener.step("picked up checkpoint " + id + ": " + describe(statuses));
        try {
            offsets = rendezvous.offsets(members.agents());
        } catch (CheckpointFailedException e) {
            throw abortAfterRestart(id, members, "could not reach every agent", e);
        }
        if (allVms(statuses, v -> v.phase() == VmPhase.CAPTURED)) {
            try {
                listener.whileSuspended(id); // what the previous coordinator may not have taken yet (idempotent)
                Instant tr = rendezvous.resumeInstant(offsets, Duration.ZERO);
                listener.step("every VM captured at the cut");
                statuses = resumeAll(id, members, offsets, tr, options, listener);
                return report(id, statuses, offsets, ts != null ? ts : firstStop(statuses), tr, "adopted after a coordinator restart",
                        Duration.between(started, clock.instant()));
            } catch (CheckpointFailedException e) {
                Aborts.Outcome outcome = aborts.abortAll(id, members.agents(), e.getMessage());
                throw new CheckpointFailedException("checkpoint " + id + " aborted (" + e.getMessage() + "); " + outcome, e);
            }
        }
        if (allVms(statuses, v -> v.phase().runsAgain())) {
            try {
                statuses = new LinkedHashMap<>(statuses);
                statuses.putAll(awaitStreamed(id, statuses, options.completionTimeout(), listener));
            } catch (CheckpointFailedException e) {
                Aborts.Outcome outcome = aborts.abortAndDiscardAll(id, members.agents(), e.getMessage());
                throw new CheckpointFailedException("checkpoint " + id + " aborted (" + e.getMessage() + "); " + outcome, e);
            }
            Instant tr = statuses.values().stream().flatMap(s -> s.vms().stream()).map(VmCheckpointStatus::resumedAt)
                    .filter(Objects::nonNull).min(Instant::compareTo).orElse(clock.instant());
            return report(id, statuses, offsets, ts != null ? ts : firstStop(statuses), tr, "adopted after a coordinator restart",
                    Duration.between(started, clock.instant()));
        }
        String where = describe(statuses);
        Aborts.Outcome outcome = aborts.abortAll(id, members.agents(), "coordinator restarted before the cut");
        throw new CheckpointFailedException("the coordinator restarted while checkpoint " + id + " was before its cut (" + where + "); "
                + (outcome.everywhere() ? "aborted on every agent, every VM left running" : outcome)
                + "; create a new checkpoint");
    }

    private CheckpointFailedException abortAfterRestart(String id, VirtualClusterMembers members, String what, CheckpointFailedException e) {
        Aborts.Outcome outcome = aborts.abortAll(id, members.agents(), "coordinator restarted and " + what + ": " + e.getMessage());
        return new CheckpointFailedException("checkpoint " + id + " aborted after a coordinator restart (" + e.getMessage() + "); " + outcome, e);
    }

    private static Instant firstStop(Map<AgentClient, CheckpointStatus> statuses) {
        return statuses.values().stream().flatMap(s -> s.vms().stream()).map(VmCheckpointStatus::stopIssuedAt)
                .filter(Objects::nonNull).min(Instant::compareTo).orElse(null);
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

    /** Every VM met its local ending condition, or the global bound passed: heard from each agent as it happens. */
    private String awaitGlobalEndingCondition(String id, VirtualClusterMembers members, CheckpointOptions options)
            throws CheckpointFailedException, InterruptedException {
        PhaseWatch.Outcome outcome = watch.await(id, members.agents(), VmPhase.LIVE_DONE,
                clock.instant().plus(options.globalLiveBound()));
        return outcome.reached() ? "every VM met its local ending condition" : "global live-stage bound of " + options.globalLiveBound() + " reached";
    }

    /** Every VM in {@code phase} (the barrier: every VM captured; then every VM resumed), heard from each agent as it happens. */
    private Map<AgentClient, CheckpointStatus> awaitPhase(String id, VirtualClusterMembers members, VmPhase phase, Duration timeout,
                                                          String step) throws CheckpointFailedException, InterruptedException {
        return awaitOutcome(id, members, phase, timeout, step).statuses();
    }

    private PhaseWatch.Outcome awaitOutcome(String id, VirtualClusterMembers members, VmPhase phase, Duration timeout, String step)
            throws CheckpointFailedException, InterruptedException {
        PhaseWatch.Outcome outcome = watch.await(id, members.agents(), phase, clock.instant().plus(timeout));
        if (!outcome.reached()) {
            throw new CheckpointFailedException(step + " did not finish within " + timeout + ": " + describe(outcome.statuses()));
        }
        return outcome;
    }

    private Map<AgentClient, CheckpointStatus> statuses(String id, VirtualClusterMembers members) throws CheckpointFailedException {
        return AgentCalls.requireAll(calls.parallel(members.agents(), agent -> agent.status(id)), "status");
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

    private static CheckpointReport report(String id, Map<AgentClient, CheckpointStatus> done, Map<AgentClient, ClockOffset> offsets,
                                           Instant ts, Instant tr, String liveEnd, Duration took) {
        return report(id, done, offsets, offsets, ts, tr, liveEnd, took);
    }

    /**
     * Ts plus the lateness the agent resumed the VM by, so that the manifest's {@code stoppedAt - suspendAt} is that same
     * lateness for every later restart; a VM never stopped has none.
     */
    private static Instant frozenAt(VmCheckpointStatus vm, ClockOffset offset, Instant ts) {
        if (vm.stopIssuedAt() == null) {
            return null;
        }
        return vm.stopLate() != null ? ts.plus(vm.stopLate()) : offset.toCoordinator(vm.stopIssuedAt());
    }

    /** Instants up to the capture read with the clocks as measured before Ts, resumes with those measured before Tr. */
    private static CheckpointReport report(String id, Map<AgentClient, CheckpointStatus> done, Map<AgentClient, ClockOffset> offsets,
                                           Map<AgentClient, ClockOffset> atTr, Instant ts, Instant tr, String liveEnd, Duration took) {
        List<VmCheckpointReport> vms = new ArrayList<>();
        done.forEach((agent, status) -> {
            ClockOffset offset = offsets.get(agent);
            ClockOffset resumeOffset = atTr.get(agent);
            for (VmCheckpointStatus vm : status.vms()) {
                var f = vm.figures();
                vms.add(new VmCheckpointReport(vm.vm(), agent.node(), f, offset.toCoordinator(vm.liveDoneAt()),
                        offset.toCoordinator(f != null && f.stopAt() != null ? f.stopAt() : vm.stopIssuedAt()),
                        offset.toCoordinator(vm.capturedAt()),
                        resumeOffset.toCoordinator(f != null && f.resumeAt() != null ? f.resumeAt() : vm.resumedAt()), vm.guestClockAtCut(),
                        vm.liveRestarts(), offset.toCoordinator(vm.stopIssuedAt()), frozenAt(vm, offset, ts)));
            }
        });
        vms.sort((a, b) -> a.vm().compareTo(b.vm()));
        return new CheckpointReport(id, vms, ts, tr, liveEnd, took);
    }
}
