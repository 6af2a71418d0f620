package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.FlushResult;
import io.mekha.agent.api.AgentDtos.PublishManifestRequest;
import io.mekha.agent.api.AgentDtos.StoredCheckpoint;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.AgentDtos.StoredVmResult;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.time.TimePolicy;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.Future;
import org.jboss.logging.Logger;

/**
 * A VC's checkpoints beyond memory: the flush scheduler (L0 to L1 and L2 with bounded writers
 * per target), the restart from the fastest level holding a complete, verified copy with
 * fallback to the next, and retention.
 */
public final class CheckpointStorage implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(CheckpointStorage.class);

    private final List<AgentClient> agents;
    private final Coordinator coordinator;
    private final Clock clock;
    private final AgentCalls calls = new AgentCalls("storage-call");

    public CheckpointStorage(List<AgentClient> agents, Coordinator coordinator, Clock clock) {
        this.agents = List.copyOf(agents);
        this.coordinator = coordinator;
        this.clock = clock;
    }

    // ---------------------------------------------------------------- flush

    /** The manifest of a just-taken checkpoint, before any level holds it. */
    public static CheckpointManifest draft(String vc, CheckpointReport report, CheckpointOptions options, Instant now) {
        List<CheckpointManifest.VmEntry> vms = report.vms().stream()
                .map(v -> new CheckpointManifest.VmEntry(v.vm(), v.node(), null, null, v.stoppedAt(), v.guestClockAtCut(), null, null))
                .toList();
        return new CheckpointManifest(CheckpointManifest.FORMAT, vc, report.id(), StorageLevel.L0, "memory", now, report.suspendAt(),
                options.mode().displayName(), options.timePolicy() == null ? TimePolicy.VIRTUAL.displayName() : options.timePolicy().displayName(),
                vms, List.of(StorageLevel.L0));
    }

    private final class Job {
        final CheckpointManifest.VmEntry vm;
        final AgentClient agent;
        final StorageLevel level;
        final long sizeHint;
        final Job after;
        String slot;
        volatile boolean done;
        volatile FlushResult result;
        volatile String error;
        volatile StorageLevel from;
        volatile Instant startedAt;
        volatile Instant finishedAt;

        Job(CheckpointManifest.VmEntry vm, AgentClient agent, StorageLevel level, long sizeHint, Job after) {
            this.vm = vm;
            this.agent = agent;
            this.level = level;
            this.sizeHint = sizeHint;
            this.after = after;
        }
    }

    /**
     * Writes every VM of a complete checkpoint to the plan's levels. Writes to one target are
     * bounded ({@code level1WritersPerNode} per node's disk, {@code level2Writers} for the shared
     * target) and started in the plan's order; a level's manifest is published once every VM's
     * stream there is written and verified. A failed write leaves that level unpublished (nothing
     * partial is visible) and the shadows in place.
     *
     * @param sizes each VM's expected state size (bytes), for ordering; absent: equal
     */
    public FlushReport flush(CheckpointManifest draft, Map<String, Long> sizes, FlushPlan plan, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        Map<String, AgentClient> byNode = new HashMap<>();
        agents.forEach(a -> byNode.put(a.node(), a));
        // a VM whose shadow went to a partner node is saved from the partner's copy (QEMU streams a paused VM out only once)
        Map<String, AgentClient> partnerCopies = new HashMap<>();
        calls.parallel(agents, agent -> agent.partners(draft.checkpoint())).forEach((agent, r) -> {
            if (r.error() == null) {
                r.value().stream().filter(p -> p.state().equals("held") && !p.streamed()).forEach(p -> partnerCopies.put(p.vm(), agent));
            }
        });
        List<Job> jobs = new ArrayList<>();
        for (CheckpointManifest.VmEntry listed : draft.vms()) {
            AgentClient agent = partnerCopies.containsKey(listed.name()) ? partnerCopies.get(listed.name()) : byNode.get(listed.node());
            CheckpointManifest.VmEntry vm = agent == null ? listed : new CheckpointManifest.VmEntry(listed.name(), agent.node(), listed.spec(),
                    listed.accelerator(), listed.stoppedAt(), listed.guestClockAtCut(), listed.stream(), listed.disk());
            if (agent == null) {
                throw new CheckpointFailedException("checkpoint " + draft.checkpoint() + ": no agent for node " + vm.node() + " (VM '" + vm.name() + "')");
            }
            long size = sizes.getOrDefault(vm.name(), 0L);
            Job l1 = plan.levels().contains(StorageLevel.L1) ? new Job(vm, agent, StorageLevel.L1, size, null) : null;
            if (l1 != null) {
                l1.slot = "L1 node " + vm.node();
                jobs.add(l1);
            }
            if (plan.levels().contains(StorageLevel.L2)) {
                Job l2 = new Job(vm, agent, StorageLevel.L2, size, l1);
                l2.slot = "L2";
                jobs.add(l2);
            }
        }
        Comparator<Job> order = switch (plan.order()) {
            case SMALLEST_FIRST -> Comparator.comparingLong(j -> j.sizeHint);
            case LARGEST_FIRST -> Comparator.comparingLong(j -> -j.sizeHint);
            case AS_LISTED -> (a, b) -> 0;
        };
        List<Job> pending = new ArrayList<>(jobs);
        pending.sort(order);
        Map<String, Integer> running = new HashMap<>();
        Map<String, Integer> peak = new TreeMap<>();
        Object lock = new Object();
        List<Future<?>> futures = new ArrayList<>();
        listener.step("flushing checkpoint " + draft.checkpoint() + " to " + plan.levels() + ": " + jobs.size() + " writes, at most "
                + plan.level1WritersPerNode() + " per node disk and " + plan.level2Writers() + " to the shared target at once");
        Map<StorageLevel, CheckpointManifest> published = new EnumMap<>(StorageLevel.class);
        Map<StorageLevel, String> failures = new EnumMap<>(StorageLevel.class);
        List<StorageLevel> holding = new ArrayList<>(List.of(StorageLevel.L0));
        Instant durableAt = null;
        synchronized (lock) {
            while (true) {
                for (var it = pending.iterator(); it.hasNext(); ) {
                    Job job = it.next();
                    if (job.after != null && !job.after.done) {
                        continue;
                    }
                    int limit = job.level == StorageLevel.L1 ? plan.level1WritersPerNode() : plan.level2Writers();
                    int now = running.getOrDefault(job.slot, 0);
                    if (now >= limit) {
                        continue;
                    }
                    it.remove();
                    running.put(job.slot, now + 1);
                    peak.merge(job.slot, now + 1, Math::max);
                    futures.add(calls.submit(() -> {
                        runJob(job, draft, plan);
                        synchronized (lock) {
                            running.merge(job.slot, -1, Integer::sum);
                            lock.notifyAll();
                        }
                        return null;
                    }));
                }
                for (StorageLevel level : plan.levels()) {
                    if (published.containsKey(level) || failures.containsKey(level)) {
                        continue;
                    }
                    List<Job> atLevel = jobs.stream().filter(j -> j.level == level).toList();
                    if (!atLevel.stream().allMatch(j -> j.done)) {
                        continue;
                    }
                    List<String> errors = atLevel.stream().filter(j -> j.error != null).map(j -> j.vm.name() + ": " + j.error).toList();
                    if (!errors.isEmpty()) {
                        failures.put(level, String.join("; ", errors));
                        listener.step(level + " not published: " + String.join("; ", errors));
                        continue;
                    }
                    try {
                        holding.add(level);
                        CheckpointManifest manifest = publish(draft, level, plan, atLevel, holding);
                        published.put(level, manifest);
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
                if (pending.isEmpty() && jobs.stream().allMatch(j -> j.done)) {
                    break;
                }
                lock.wait(200);
            }
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                LOG.warn("flush write failed unexpectedly", e.getCause());
            }
        }
        boolean released = false;
        if (plan.level0() == FlushPlan.Level0Policy.RELEASE_WHEN_DURABLE && durableAt != null) {
            releaseLevel0(draft.checkpoint());
            released = true;
            listener.step("shadows of checkpoint " + draft.checkpoint() + " released: " + plan.durableLevel() + " holds it");
        } else if (!failures.isEmpty()) {
            listener.step("shadows of checkpoint " + draft.checkpoint() + " kept in memory (L0): not every level was written");
        }
        List<FlushReport.Write> writes = jobs.stream().map(j -> new FlushReport.Write(j.vm.name(), j.vm.node(), j.level, j.from,
                j.result == null ? 0 : j.result.stream().bytes(), j.result == null ? 0 : j.result.stream().rawBytes(),
                j.startedAt == null ? null : Duration.between(started, j.startedAt),
                j.startedAt == null || j.finishedAt == null ? null : Duration.between(j.startedAt, j.finishedAt), j.error)).toList();
        return new FlushReport(draft.checkpoint(), writes, published, failures, started, durableAt, peak, released);
    }

    private void runJob(Job job, CheckpointManifest draft, FlushPlan plan) {
        job.startedAt = clock.instant();
        try {
            if (job.after != null && job.after.error == null && job.after.result != null) {
                job.from = StorageLevel.L1;
            } else {
                job.from = StorageLevel.L0;
            }
            FlushRequest request = new FlushRequest(job.vm.name(), draft.virtualCluster(), job.level,
                    job.level == StorageLevel.L2 ? plan.level2() : null, job.from, plan.compression(), plan.writeTimeout(),
                    job.from == StorageLevel.L1 ? job.after.result.stream() : null,
                    job.from == StorageLevel.L1 ? job.after.result.disk() : null);
            job.result = job.agent.flush(draft.checkpoint(), request, plan.writeTimeout().plus(Duration.ofMinutes(2)));
        } catch (AgentCallException | RuntimeException e) {
            job.error = e.getMessage();
        } finally {
            job.finishedAt = clock.instant();
            job.done = true;
        }
    }

    private CheckpointManifest publish(CheckpointManifest draft, StorageLevel level, FlushPlan plan, List<Job> written,
                                       List<StorageLevel> holding) throws CheckpointFailedException {
        Map<String, FlushResult> results = new HashMap<>();
        written.forEach(j -> results.put(j.vm.name(), j.result));
        List<CheckpointManifest.VmEntry> entries = draft.vms().stream().map(v -> {
            FlushResult r = results.get(v.name());
            return new CheckpointManifest.VmEntry(v.name(), r.node(), r.spec(), r.accelerator(), v.stoppedAt(), v.guestClockAtCut(), r.stream(),
                    r.disk());
        }).toList();
        CheckpointManifest manifest = new CheckpointManifest(draft.format(), draft.virtualCluster(), draft.checkpoint(), level,
                level == StorageLevel.L1 ? "node-local directories" : plan.level2().describe(), draft.createdAt(), draft.suspendAt(),
                draft.mode(), draft.timePolicy(), entries, List.copyOf(holding));
        // L1 is per node: every node holding a VM of the checkpoint gets the whole manifest; L2 is shared: one copy
        List<AgentClient> writers = level == StorageLevel.L1
                ? written.stream().map(j -> j.agent).distinct().toList() : List.of(written.get(0).agent);
        AgentCalls.requireAll(calls.parallel(writers, agent -> {
            agent.publishManifest(new PublishManifestRequest(level, level == StorageLevel.L2 ? plan.level2() : null, manifest));
            return Boolean.TRUE;
        }), "publishing the " + level + " manifest");
        return manifest;
    }

    /** Drops a checkpoint's shadows, and the partner copies of them, on every agent. */
    public void releaseLevel0(String checkpoint) {
        calls.parallel(agents, agent -> {
            agent.discard(checkpoint);
            return Boolean.TRUE;
        });
        calls.parallel(agents, agent -> {
            agent.dropPartners(checkpoint);
            return Boolean.TRUE;
        });
    }

    // ---------------------------------------------------------------- level 0 on partner nodes

    /**
     * Where each VM's partner copy went.
     *
     * @param partners VM to the node that now also holds it in memory
     */
    public record PartnerReport(String checkpoint, Map<String, String> partners, Duration took) {}

    /**
     * Copies every VM's shadow of a complete checkpoint into the memory of another node (the next
     * node in the agent list, round robin), so that losing any one node leaves a copy of every
     * VM: the VM's own shadow on its node, and the partner copy elsewhere. The VMs run on
     * meanwhile. Costs each node the memory of the copies it holds for others; each partner
     * checks that it can lend it before it accepts. Needs two nodes or more.
     */
    public PartnerReport replicateLevel0(String checkpoint, ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        Instant started = clock.instant();
        if (agents.size() < 2) {
            throw new CheckpointFailedException("a partner copy needs a second node; this VC has only node " + agents.get(0).node());
        }
        Map<AgentClient, CheckpointStatus> statuses = new LinkedHashMap<>();
        calls.parallel(agents, agent -> agent.status(checkpoint)).forEach((agent, r) -> {
            if (r.value() != null) {
                statuses.put(agent, r.value());
            }
        });
        if (statuses.isEmpty()) {
            throw new CheckpointFailedException("no agent holds checkpoint " + checkpoint);
        }
        Map<String, String> placed = new LinkedHashMap<>();
        Map<AgentClient, List<String>> hosted = new LinkedHashMap<>();
        try {
            for (var entry : statuses.entrySet()) {
                AgentClient source = entry.getKey();
                AgentClient partner = agents.get((agents.indexOf(source) + 1) % agents.size());
                Map<String, io.mekha.agent.api.AgentDtos.VmInfo> infos = new HashMap<>();
                source.vms().forEach(v -> infos.put(v.name(), v));
                for (VmCheckpointStatus vm : entry.getValue().vms()) {
                    io.mekha.agent.api.AgentDtos.VmInfo info = infos.get(vm.vm());
                    if (info == null || info.spec() == null) {
                        throw new CheckpointFailedException("node " + source.node() + " no longer describes VM '" + vm.vm() + "'");
                    }
                    var f = vm.figures();
                    var copy = partner.hostPartner(checkpoint, new io.mekha.agent.api.AgentDtos.PartnerShadowRequest(vm.vm(), source.node(),
                            info.spec(), info.accelerator(), partner.base().getHost(), f != null && f.stopAt() != null ? f.stopAt() : vm.stopIssuedAt(),
                            vm.guestClockAtCut(), null, vm.cutDisk()));
                    hosted.computeIfAbsent(partner, a -> new ArrayList<>()).add(vm.vm());
                    listener.step("copying VM '" + vm.vm() + "' from node " + source.node() + " into the memory of node " + partner.node());
                    source.replicate(checkpoint, new io.mekha.agent.api.AgentDtos.ReplicateRequest(vm.vm(), copy.uri()));
                    placed.put(vm.vm(), partner.node());
                }
            }
            Instant deadline = clock.instant().plus(Duration.ofMinutes(10));
            for (var entry : hosted.entrySet()) {
                while (true) {
                    List<io.mekha.agent.api.AgentDtos.PartnerShadow> copies = entry.getKey().partners(checkpoint);
                    List<String> failed = copies.stream().filter(c -> c.state().equals("failed")).map(c -> c.vm() + ": " + c.error()).toList();
                    if (!failed.isEmpty()) {
                        throw new CheckpointFailedException("node " + entry.getKey().node() + " could not load its partner copies: "
                                + String.join("; ", failed));
                    }
                    if (copies.stream().filter(c -> entry.getValue().contains(c.vm())).allMatch(c -> c.state().equals("held"))) {
                        break;
                    }
                    if (clock.instant().isAfter(deadline)) {
                        throw new CheckpointFailedException("partner copies on node " + entry.getKey().node() + " did not load in 10 minutes");
                    }
                    Thread.sleep(50);
                }
            }
        } catch (AgentCallException e) {
            hosted.keySet().forEach(a -> calls.parallel(List.of(a), x -> {
                x.dropPartners(checkpoint);
                return Boolean.TRUE;
            }));
            throw new CheckpointFailedException("copying checkpoint " + checkpoint + " to partner nodes failed, partner copies dropped"
                    + " (the shadows on the VMs' own nodes stay): " + e.getMessage(), e);
        } catch (CheckpointFailedException e) {
            hosted.keySet().forEach(a -> calls.parallel(List.of(a), x -> {
                x.dropPartners(checkpoint);
                return Boolean.TRUE;
            }));
            throw e;
        }
        listener.step("every VM of checkpoint " + checkpoint + " is in the memory of two nodes: " + placed);
        return new PartnerReport(checkpoint, placed, Duration.between(started, clock.instant()));
    }

    // ---------------------------------------------------------------- restore

    /**
     * A restart from storage: which level it used and why faster ones were passed over.
     *
     * @param skipped each faster level tried, with why it could not serve
     */
    public record RestoreReport(StorageLevel level, Map<StorageLevel, String> skipped, RestartReport restart) {}

    /**
     * Restarts a VC from the fastest level (from {@code preferred} on) that holds checkpoint
     * {@code checkpoint} whole and verified, falling back level by level. Every stream is read and
     * checked against its manifest before any VM is started.
     */
    public RestoreReport restore(String vc, String checkpoint, StorageLevel preferred, StorageTarget level2, TimePolicy policy,
                                 Duration slewPeriod, ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        return restore(vc, checkpoint, preferred, level2, policy, slewPeriod, listener, (level, nodes) -> { });
    }

    /**
     * Told which node restarts each VM, once a level has been chosen and before anything is loaded: on KubeVirt the
     * operator recreates each VM's instance on that node then, with the hook's restore annotation.
     */
    @FunctionalInterface
    public interface Placed {
        void at(StorageLevel level, Map<String, String> nodeByVm) throws CheckpointFailedException, InterruptedException;
    }

    /** {@link #restore(String, String, StorageLevel, StorageTarget, TimePolicy, Duration, ProtocolListener)}, telling {@code placed} where each VM restarts. */
    public RestoreReport restore(String vc, String checkpoint, StorageLevel preferred, StorageTarget level2, TimePolicy policy,
                                 Duration slewPeriod, ProtocolListener listener, Placed placed)
            throws CheckpointFailedException, InterruptedException {
        Map<StorageLevel, String> skipped = new LinkedHashMap<>();
        StorageLevel first = preferred == null ? StorageLevel.L0 : preferred;
        for (StorageLevel level : StorageLevel.values()) {
            if (level.ordinal() < first.ordinal()) {
                continue;
            }
            if (level == StorageLevel.L2 && level2 == null) {
                skipped.put(level, "no level-2 target configured");
                continue;
            }
            try {
                if (level == StorageLevel.L0) {
                    Map<String, AgentClient> inMemory;
                    try {
                        inMemory = coordinator.level0Placement(checkpoint);
                    } catch (CheckpointFailedException e) {
                        skipped.put(level, e.getMessage());
                        continue;
                    }
                    Map<String, String> nodes = new LinkedHashMap<>();
                    inMemory.forEach((vm, agent) -> nodes.put(vm, agent.node()));
                    placed.at(level, nodes);
                    return new RestoreReport(level, skipped, coordinator.restart(checkpoint, policy, slewPeriod, listener));
                }
                Map<AgentClient, List<String>> placement = new LinkedHashMap<>();
                CheckpointManifest manifest = findManifest(vc, checkpoint, level, level2, placement);
                listener.step("verifying checkpoint " + checkpoint + " at " + level + " (" + level.description() + ")");
                String problem = verifyAll(level, level2, manifest, placement);
                if (problem != null) {
                    skipped.put(level, problem);
                    listener.step(level + " cannot serve: " + problem);
                    continue;
                }
                Map<String, String> nodes = new LinkedHashMap<>();
                placement.forEach((agent, vms) -> vms.forEach(vm -> nodes.put(vm, agent.node())));
                placed.at(level, nodes);
                Map<AgentClient, AgentCalls.Result<List<StoredVmResult>>> loads = calls.parallel(List.copyOf(placement.keySet()),
                        agent -> agent.loadStored(new StoredVmsRequest(level, level2, manifest, placement.get(agent))));
                List<String> loadErrors = new ArrayList<>();
                loads.forEach((agent, r) -> {
                    if (r.error() != null) {
                        loadErrors.add(r.error().getMessage());
                    }
                });
                if (!loadErrors.isEmpty()) {
                    calls.parallel(List.copyOf(placement.keySet()), agent -> {
                        agent.dropLoaded(checkpoint);
                        return Boolean.TRUE;
                    });
                    skipped.put(level, String.join("; ", loadErrors));
                    continue;
                }
                return new RestoreReport(level, skipped,
                        coordinator.restartLoaded(checkpoint, List.copyOf(placement.keySet()), level, policy, slewPeriod, listener));
            } catch (NoCopy e) {
                skipped.put(level, e.getMessage());
            }
        }
        throw new CheckpointFailedException("cannot restart " + vc + " from checkpoint " + checkpoint + ": no level holds a complete, verified copy ("
                + describe(skipped) + "); no VM was started");
    }

    private static final class NoCopy extends Exception {
        NoCopy(String message) {
            super(message);
        }
    }

    private String level0Problem(String checkpoint) {
        try {
            coordinator.level0Placement(checkpoint);
            return null;
        } catch (CheckpointFailedException e) {
            return e.getMessage();
        }
    }

    /** Finds the level's manifest and decides which agent restarts which VM. */
    private CheckpointManifest findManifest(String vc, String checkpoint, StorageLevel level, StorageTarget level2,
                                            Map<AgentClient, List<String>> placement) throws NoCopy {
        StoredRequest request = new StoredRequest(level, level == StorageLevel.L2 ? level2 : null, vc, checkpoint);
        CheckpointManifest manifest = null;
        List<String> problems = new ArrayList<>();
        List<AgentClient> askers = level == StorageLevel.L2 ? agents.subList(0, Math.min(1, agents.size())) : agents;
        for (var entry : calls.parallel(askers, agent -> agent.readManifest(request)).entrySet()) {
            AgentCalls.Result<CheckpointManifest> r = entry.getValue();
            if (r.error() == null) {
                manifest = manifest == null ? r.value() : manifest;
            } else if (r.error().status() != 404) {
                problems.add(r.error().getMessage());
            }
        }
        if (manifest == null) {
            throw new NoCopy(problems.isEmpty() ? "no manifest for checkpoint " + checkpoint + " of " + vc + (level == StorageLevel.L1
                    ? " on any node" : " at " + level2.describe()) : String.join("; ", problems));
        }
        Map<String, AgentClient> byNode = new HashMap<>();
        agents.forEach(a -> byNode.put(a.node(), a));
        int next = 0;
        for (CheckpointManifest.VmEntry vm : manifest.vms()) {
            AgentClient agent = byNode.get(vm.node());
            if (agent == null && level == StorageLevel.L1) {
                throw new NoCopy("VM '" + vm.name() + "' was saved on node " + vm.node() + ", which has no agent now (level 1 is node-local)");
            }
            if (agent == null) {
                // its node is gone: shared storage lets another node take the VM
                agent = agents.get(next++ % agents.size());
            }
            placement.computeIfAbsent(agent, a -> new ArrayList<>()).add(vm.name());
        }
        return manifest;
    }

    private String verifyAll(StorageLevel level, StorageTarget level2, CheckpointManifest manifest, Map<AgentClient, List<String>> placement) {
        List<String> problems = new ArrayList<>();
        calls.parallel(List.copyOf(placement.keySet()), agent -> agent.verifyStored(new StoredVmsRequest(level,
                level == StorageLevel.L2 ? level2 : null, manifest, placement.get(agent)))).forEach((agent, r) -> {
            if (r.error() != null) {
                problems.add(r.error().getMessage());
            } else {
                r.value().stream().filter(v -> !v.ok()).forEach(v -> problems.add(v.error()));
            }
        });
        return problems.isEmpty() ? null : String.join("; ", problems);
    }

    private static String describe(Map<StorageLevel, String> skipped) {
        StringBuilder s = new StringBuilder();
        skipped.forEach((level, why) -> s.append(s.length() == 0 ? "" : "; ").append(level).append(": ").append(why));
        return s.toString();
    }

    // ---------------------------------------------------------------- retention

    /** Where a checkpoint is held whole. */
    public record Holdings(String checkpoint, Instant createdAt, List<StorageLevel> complete) {}

    /**
     * Every checkpoint of {@code vc} found at L1 or L2, plus {@code known} (checkpoints the caller took, with
     * when: those only in memory have no manifest to say), with the levels holding each whole, oldest first.
     */
    public List<Holdings> holdings(String vc, StorageTarget level2, Map<String, Instant> known) {
        Map<String, Instant> created = new TreeMap<>(known);
        Map<String, List<StorageLevel>> levels = new HashMap<>();
        Map<String, Integer> l1Nodes = new HashMap<>();
        Map<String, List<String>> l1Need = new HashMap<>();
        calls.parallel(agents, agent -> agent.listStored(new StoredRequest(StorageLevel.L1, null, vc, null))).forEach((agent, r) -> {
            if (r.error() != null) {
                return;
            }
            for (StoredCheckpoint c : r.value()) {
                created.putIfAbsent(c.checkpoint(), null);
                if (c.manifest() != null) {
                    created.putIfAbsent(c.checkpoint(), c.manifest().createdAt());
                    l1Nodes.merge(c.checkpoint(), 1, Integer::sum);
                    l1Need.put(c.checkpoint(), c.manifest().vms().stream().map(CheckpointManifest.VmEntry::node).distinct().toList());
                }
            }
        });
        l1Need.forEach((id, nodes) -> {
            if (l1Nodes.getOrDefault(id, 0) >= nodes.size()) {
                levels.computeIfAbsent(id, k -> new ArrayList<>()).add(StorageLevel.L1);
            }
        });
        if (level2 != null && !agents.isEmpty()) {
            calls.parallel(List.of(agents.get(0)), agent -> agent.listStored(new StoredRequest(StorageLevel.L2, level2, vc, null)))
                    .forEach((agent, r) -> {
                        if (r.error() == null) {
                            for (StoredCheckpoint c : r.value()) {
                                created.putIfAbsent(c.checkpoint(), null);
                                if (c.manifest() != null) {
                                    created.putIfAbsent(c.checkpoint(), c.manifest().createdAt());
                                    levels.computeIfAbsent(c.checkpoint(), k -> new ArrayList<>()).add(StorageLevel.L2);
                                }
                            }
                        }
                    });
        }
        List<Holdings> result = new ArrayList<>();
        for (var e : created.entrySet()) {
            List<StorageLevel> complete = new ArrayList<>();
            if (level0Problem(e.getKey()) == null) {
                complete.add(StorageLevel.L0);
            }
            complete.addAll(levels.getOrDefault(e.getKey(), List.of()));
            result.add(new Holdings(e.getKey(), e.getValue(), complete));
        }
        result.sort(Comparator.comparing((Holdings h) -> h.createdAt() == null ? Instant.MIN : h.createdAt()).thenComparing(Holdings::checkpoint));
        return result;
    }

    /**
     * Removes a checkpoint from one level. Refuses to remove the last complete copy unless
     * {@code force}: a checkpoint is never lost by accident.
     */
    public void release(String vc, String checkpoint, StorageLevel level, StorageTarget level2, boolean force)
            throws CheckpointFailedException {
        Optional<Holdings> held = holdings(vc, level2, Map.of(checkpoint, Instant.EPOCH)).stream().filter(h -> h.checkpoint().equals(checkpoint)).findFirst();
        List<StorageLevel> complete = held.map(Holdings::complete).orElse(List.of());
        if (!force && complete.equals(List.of(level))) {
            throw new CheckpointFailedException("checkpoint " + checkpoint + " is held whole only at " + level + " (" + level.description()
                    + "); releasing it would lose the checkpoint. Flush it to another level first, or delete it on purpose");
        }
        switch (level) {
            case L0 -> releaseLevel0(checkpoint);
            case L1 -> calls.parallel(agents, agent -> {
                agent.deleteStored(new StoredRequest(StorageLevel.L1, null, vc, checkpoint));
                return Boolean.TRUE;
            });
            case L2 -> {
                if (level2 == null) {
                    throw new CheckpointFailedException("releasing L2 needs the level-2 target");
                }
                AgentCalls.requireAll(calls.parallel(List.of(agents.get(0)), agent -> {
                    agent.deleteStored(new StoredRequest(StorageLevel.L2, level2, vc, checkpoint));
                    return Boolean.TRUE;
                }), "deleting from L2");
            }
        }
    }

    /** Deletes a checkpoint at every level. */
    public void delete(String vc, String checkpoint, StorageTarget level2) throws CheckpointFailedException {
        for (StorageLevel level : StorageLevel.values()) {
            if (level != StorageLevel.L2 || level2 != null) {
                release(vc, checkpoint, level, level2, true);
            }
        }
    }

    /** Keeps the newest {@code keep} checkpoints of {@code vc} (by creation time) and deletes the rest everywhere. */
    public List<String> keepNewest(String vc, int keep, StorageTarget level2, Map<String, Instant> known) throws CheckpointFailedException {
        if (keep < 1) {
            throw new CheckpointFailedException("keep at least 1 checkpoint (asked to keep " + keep + ")");
        }
        List<Holdings> all = holdings(vc, level2, known);
        List<String> deleted = new ArrayList<>();
        for (int i = 0; i < all.size() - keep; i++) {
            delete(vc, all.get(i).checkpoint(), level2);
            deleted.add(all.get(i).checkpoint());
        }
        return deleted;
    }

    @Override
    public void close() {
        calls.close();
    }
}
