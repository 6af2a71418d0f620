package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.FlushResult;
import io.mekha.agent.api.AgentDtos.PublishManifestRequest;
import io.mekha.agent.api.PartnerCopyState;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Runs a flush: starts the writes {@link FlushSchedule} allows, as each one ends starts the next,
 * and publishes a level's manifest once every VM's write there is done and verified. A failed write
 * leaves that level unpublished (nothing partial is visible) and the level-0 copies in place.
 */
final class Flusher {
    private final List<AgentClient> agents;
    private final Clock clock;
    private final AgentCalls calls;
    private final Level0Release releaseLevel0;

    /** One write in flight or done, with the agent that does it. */
    private static final class Write {
        final FlushSchedule.Job job;
        final CheckpointManifest.VmEntry vm;
        /** Writes it: the node holding the VM's copy; for a write from L1, the node that wrote that copy. */
        volatile AgentClient agent;
        /** Another node holding a copy of the VM's memory that the write may be done from again if {@link #agent} fails. */
        final AgentClient fallback;
        volatile String firstError;
        volatile FlushResult result;
        volatile String error;
        volatile StorageLevel from;
        volatile Instant startedAt;
        volatile Instant finishedAt;

        Write(FlushSchedule.Job job, CheckpointManifest.VmEntry vm, AgentClient agent, AgentClient fallback) {
            this.job = job;
            this.vm = vm;
            this.agent = agent;
            this.fallback = fallback;
        }
    }

    Flusher(List<AgentClient> agents, Clock clock, AgentCalls calls, Level0Release releaseLevel0) {
        this.agents = agents;
        this.clock = clock;
        this.calls = calls;
        this.releaseLevel0 = releaseLevel0;
    }

    /** Writes every VM of a complete checkpoint to the plan's levels; returns what was written and published where. */
    FlushReport flush(CheckpointManifest draft, Map<String, Long> sizes, FlushPlan plan, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        Map<Integer, Write> writes = new HashMap<>();
        List<FlushSchedule.Job> pending = new ArrayList<>(plan(draft, sizes, plan, writes));
        FlushSchedule.Limits limits = new FlushSchedule.Limits(plan.level1WritersPerNode(), plan.level2Writers());
        listener.step("flushing checkpoint " + draft.checkpoint() + " to " + plan.levels() + ": " + writes.size() + " writes, at most "
                + plan.level1WritersPerNode() + " per node disk and " + plan.level2Writers() + " to the shared target at once");
        BlockingQueue<Write> finished = new LinkedBlockingQueue<>();
        Map<String, Integer> running = new HashMap<>();
        Map<String, Integer> peak = new TreeMap<>();
        Set<Integer> done = new HashSet<>();
        Map<StorageLevel, CheckpointManifest> published = new EnumMap<>(StorageLevel.class);
        Map<StorageLevel, String> failures = new EnumMap<>(StorageLevel.class);
        List<StorageLevel> holding = new ArrayList<>(List.of(StorageLevel.L0));
        Instant durableAt = null;
        while (true) {
            for (FlushSchedule.Job job : FlushSchedule.startable(pending, done, running, limits)) {
                pending.remove(job);
                int now = running.merge(job.slot(), 1, Integer::sum);
                peak.merge(job.slot(), now, Math::max);
                Write write = writes.get(job.id());
                calls.submit(() -> {
                    run(write, writes, draft, plan);
                    finished.add(write);
                    return null;
                });
            }
            for (StorageLevel level : plan.levels()) {
                if (published.containsKey(level) || failures.containsKey(level)) {
                    continue;
                }
                List<Write> atLevel = writes.values().stream().filter(w -> w.job.level() == level).toList();
                if (!atLevel.stream().allMatch(w -> done.contains(w.job.id()))) {
                    continue;
                }
                List<String> errors = atLevel.stream().filter(w -> w.error != null).map(w -> w.vm.name() + ": " + w.error).toList();
                if (!errors.isEmpty()) {
                    failures.put(level, String.join("; ", errors));
                    listener.step(level + " not published: " + String.join("; ", errors));
                    continue;
                }
                try {
                    holding.add(level);
                    published.put(level, publish(draft, level, plan, atLevel, holding));
                    listener.step(level + " (" + level.description() + ") holds checkpoint " + draft.checkpoint() + ": manifest published");
                    if (level == plan.durableLevel()) {
                        durableAt = clock.instant();
                    }
                } catch (CheckpointFailedException e) {
                    holding.remove(level);
                    failures.put(level, e.getMessage());
                    listener.step(level + " not published: " + e.getMessage());
                }
            }
            if (done.size() == writes.size()) {
                break;
            }
            Write ended = finished.take();
            running.merge(ended.job.slot(), -1, Integer::sum);
            done.add(ended.job.id());
        }
        boolean released = false;
        if (plan.level0() == FlushPlan.Level0Policy.RELEASE_WHEN_DURABLE && durableAt != null) {
            releaseLevel0.release(draft.checkpoint());
            released = true;
            listener.step("shadows of checkpoint " + draft.checkpoint() + " released: " + plan.durableLevel() + " holds it");
        } else if (!failures.isEmpty()) {
            listener.step("shadows of checkpoint " + draft.checkpoint() + " kept in memory (L0): not every level was written");
        }
        List<FlushReport.Write> report = writes.values().stream().sorted((a, b) -> Integer.compare(a.job.id(), b.job.id()))
                .map(w -> new FlushReport.Write(w.vm.name(), w.agent.node(), w.job.level(), w.from,
                        w.result == null ? 0 : w.result.stream().bytes(), w.result == null ? 0 : w.result.stream().rawBytes(),
                        w.startedAt == null ? null : Duration.between(started, w.startedAt),
                        w.startedAt == null || w.finishedAt == null ? null : Duration.between(w.startedAt, w.finishedAt), w.error, w.firstError)).toList();
        return new FlushReport(draft.checkpoint(), report, published, failures, started, durableAt, peak, released);
    }

    /**
     * Every write of the flush, in the order they should start; fills {@code writes} (by job id) with each write and the
     * agent that holds the VM's copy to write from.
     */
    private List<FlushSchedule.Job> plan(CheckpointManifest draft, Map<String, Long> sizes, FlushPlan plan, Map<Integer, Write> writes)
            throws CheckpointFailedException {
        Map<String, AgentClient> byNode = new HashMap<>();
        agents.forEach(a -> byNode.put(a.node(), a));
        // a VM whose shadow went to a partner node is saved from the partner's copy (QEMU streams a paused VM out only once);
        // a held stream reads again, so it is saved on the VM's own node, where its level-1 copy belongs, and the partner's
        // copy of it is the fallback: a write that fails on the VM's node (the node lost, its disk failing) is done again there
        Map<String, AgentClient> partnerShadows = new HashMap<>();
        Map<String, AgentClient> partnerStreams = new HashMap<>();
        calls.parallel(agents, agent -> agent.partners(draft.checkpoint())).forEach((agent, r) -> {
            if (r.error() == null) {
                r.value().stream().filter(p -> p.state() == PartnerCopyState.HELD && !p.streamed()).forEach(p -> {
                    if (p.kind() == io.mekha.agent.api.PartnerKind.SHADOW) {
                        partnerShadows.put(p.vm(), agent);
                    } else if (p.kind() == io.mekha.agent.api.PartnerKind.STREAM) {
                        partnerStreams.put(p.vm(), agent);
                    }
                });
            }
        });
        List<FlushSchedule.Vm> vms = new ArrayList<>();
        Map<String, CheckpointManifest.VmEntry> entries = new HashMap<>();
        Map<String, AgentClient> writers = new HashMap<>();
        Map<String, AgentClient> fallbacks = new HashMap<>();
        for (CheckpointManifest.VmEntry listed : draft.vms()) {
            AgentClient agent = partnerShadows.getOrDefault(listed.name(), byNode.get(listed.node()));
            AgentClient fallback = partnerStreams.get(listed.name());
            if (agent == null) {
                // the VM's node has no agent any more: its partner's copy is all there is
                agent = fallback;
                fallback = null;
            }
            if (agent == null) {
                throw new CheckpointFailedException("checkpoint " + draft.checkpoint() + ": no agent for node " + listed.node()
                        + " (VM '" + listed.name() + "'), and no partner node holds a copy of it");
            }
            entries.put(listed.name(), new CheckpointManifest.VmEntry(listed.name(), agent.node(), listed.spec(), listed.accelerator(),
                    listed.stoppedAt(), listed.guestClockAtCut(), listed.stream(), listed.disk()));
            writers.put(listed.name(), agent);
            if (fallback != null && fallback != agent) {
                fallbacks.put(listed.name(), fallback);
            }
            vms.add(new FlushSchedule.Vm(listed.name(), agent.node(), sizes.getOrDefault(listed.name(), 0L)));
        }
        List<FlushSchedule.Job> jobs = FlushSchedule.jobs(vms, plan.levels(), plan.order());
        for (FlushSchedule.Job job : jobs) {
            writes.put(job.id(), new Write(job, entries.get(job.vm()), writers.get(job.vm()), fallbacks.get(job.vm())));
        }
        return jobs;
    }

    private void run(Write write, Map<Integer, Write> writes, CheckpointManifest draft, FlushPlan plan) {
        write.startedAt = clock.instant();
        try {
            Write source = write.job.after() == null ? null : writes.get(write.job.after());
            boolean fromL1 = source != null && source.error == null && source.result != null;
            if (fromL1) {
                write.agent = source.agent; // the level-1 copy is on the node that wrote it
            }
            try {
                attempt(write, draft, plan, fromL1 ? source.result : null);
            } catch (AgentCallException | RuntimeException e) {
                if (write.fallback == null || write.fallback == write.agent) {
                    throw e;
                }
                // the VM's node failed the write (lost, or its disk); its partner holds the same stream: write from there
                write.firstError = write.agent.node() + ": " + e.getMessage();
                write.agent = write.fallback;
                attempt(write, draft, plan, null);
            }
        } catch (AgentCallException | RuntimeException e) {
            write.error = write.firstError == null ? e.getMessage() : write.firstError + "; again from the copy on " + write.agent.node() + ": " + e.getMessage();
        } finally {
            write.finishedAt = clock.instant();
        }
    }

    /** One try of the write on {@code write.agent}: from the level-1 copy {@code fromL1} names, or (null) from level 0. */
    private static void attempt(Write write, CheckpointManifest draft, FlushPlan plan, FlushResult fromL1) throws AgentCallException {
        write.from = fromL1 != null ? StorageLevel.L1 : StorageLevel.L0;
        FlushRequest request = new FlushRequest(write.vm.name(), draft.virtualCluster(), write.job.level(),
                write.job.level() == StorageLevel.L2 ? plan.level2() : null, write.from, plan.compression(), plan.writeTimeout(),
                fromL1 != null ? fromL1.stream() : null, fromL1 != null ? fromL1.disk() : null);
        write.result = write.agent.flush(draft.checkpoint(), request, plan.writeTimeout().plus(Duration.ofMinutes(2)));
    }

    private CheckpointManifest publish(CheckpointManifest draft, StorageLevel level, FlushPlan plan, List<Write> written,
                                       List<StorageLevel> holding) throws CheckpointFailedException {
        Map<String, FlushResult> results = new HashMap<>();
        written.forEach(w -> results.put(w.vm.name(), w.result));
        List<CheckpointManifest.VmEntry> entries = draft.vms().stream().map(v -> {
            FlushResult r = results.get(v.name());
            return new CheckpointManifest.VmEntry(v.name(), r.node(), r.spec(), r.accelerator(), v.stoppedAt(), v.guestClockAtCut(), r.stream(),
                    r.disk());
        }).toList();
        CheckpointManifest manifest = new CheckpointManifest(draft.format(), draft.virtualCluster(), draft.checkpoint(), level,
                level == StorageLevel.L1 ? "node-local directories" : plan.level2().describe(), draft.createdAt(), draft.suspendAt(),
                draft.mode(), draft.timePolicy(), entries, List.copyOf(holding));
        // L1 is per node: every node holding a VM of the checkpoint gets the whole manifest; L2 is shared: one copy
        List<AgentClient> writers = level == StorageLevel.L1 ? written.stream().map(w -> w.agent).distinct().toList() : List.of(written.get(0).agent);
        AgentCalls.requireAll(calls.parallel(writers, agent -> {
            agent.publishManifest(new PublishManifestRequest(level, level == StorageLevel.L2 ? plan.level2() : null, manifest));
            return Boolean.TRUE;
        }), "publishing the " + level + " manifest");
        return manifest;
    }
}
