package io.mekha.operator.run;

import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.KubeDuration;
import io.mekha.api.v1alpha1.Level0Holder;
import io.mekha.api.v1alpha1.Level0Placement;
import io.mekha.api.v1alpha1.Level0Status;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointStatus;
import io.mekha.api.v1alpha1.VmProgress;
import io.mekha.api.v1alpha1.VolumeSnapshotRef;
import io.mekha.operator.service.DiskSnapshots;
import io.mekha.operator.service.OperatorMetrics;
import io.mekha.operator.service.OperatorServices;
import io.mekha.operator.service.Refusal;
import io.mekha.operator.service.VmNames;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.FlushPlan;
import io.mekha.protocol.FlushReport;
import io.mekha.protocol.ProtocolListener;
import io.mekha.protocol.VmCheckpointReport;
import io.mekha.storage.StorageTarget;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * One checkpoint's protocol run, off the reconciler's thread: the coordinated checkpoint (or,
 * after an operator restart, picking up the one under way), then the flush to the asked-for
 * levels. Progress goes to status as it happens, without ever holding up the protocol.
 */
public final class CheckpointRun implements Runnable {
    private static final Logger LOG = Logger.getLogger(CheckpointRun.class);

    /** How long the CSI driver may take to cut the disks, the VMs paused meanwhile (agents resume them by themselves after 60 s). */
    private static final Duration SNAPSHOT_TIMEOUT = Duration.ofSeconds(30);

    private final OperatorServices services;
    private final VirtualClusterCheckpoint cp;
    private final boolean adopt;
    private final DiskSnapshots snapshots;
    private final io.mekha.operator.service.VmiPausedCondition paused;
    /** Status writes from the protocol's thread go through here, in order, so a slow API server never delays Ts. */
    private final ExecutorService writer;

    /**
     * @param adopt pick up a checkpoint whose run was started by an operator process that is gone
     */
    public CheckpointRun(OperatorServices services, VirtualClusterCheckpoint checkpoint, boolean adopt) {
        this.services = services;
        this.cp = checkpoint;
        this.adopt = adopt;
        this.snapshots = new DiskSnapshots(services.client());
        this.paused = new io.mekha.operator.service.VmiPausedCondition(services.client());
        this.writer = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "status-" + checkpoint.getMetadata().getName());
            t.setDaemon(true);
            return t;
        });
    }

    @Override
    public void run() {
        try {
            runProtocol();
        } finally {
            drainWrites();
            writer.shutdownNow();
            services.locks().release(cp.getMetadata().getNamespace(), io.mekha.operator.service.SourceLocks.holder(cp));
        }
    }

    private void runProtocol() {
        String ns = cp.getMetadata().getNamespace();
        String id = cp.getStatus().checkpointId;
        Instant started = services.clock().instant();
        CheckpointReport report;
        StorageTarget level2;
        FlushPlan plan;
        List<AgentClient> agents = new ArrayList<>();
        Level0Placement placement = placement(cp.getSpec().storage);
        CheckpointStorage.PartnerRooms rooms = null;
        List<AgentClient> everyAgent = agents;
        try {
            List<String> vms = new ArrayList<>();
            Map<String, String> nodeByVm = new java.util.LinkedHashMap<>();
            for (String node : new LinkedHashSet<>(cp.getStatus().vms.stream().map(v -> v.node).toList())) {
                AgentClient agent = services.agents().forNode(node);
                agents.add(agent);
                List<String> onNode = agentVms(agent);
                cp.getStatus().vms.stream().filter(v -> node.equals(v.node)).forEach(v -> {
                    vms.add(VmNames.onAgent(ns, v.name, onNode));
                    nodeByVm.put(VmNames.onAgent(ns, v.name, onNode), node);
                });
            }
            CheckpointOptions options = CheckpointSettings.options(cp.getSpec(), vms);
            level2 = CheckpointSettings.level2(services.client(), ns, services.agents().namespace(), cp.getSpec().storage);
            plan = CheckpointSettings.flushPlan(cp.getSpec().storage, level2);
            if (placement != Level0Placement.Local) {
                // partners may be nodes that run none of the VC's VMs
                everyAgent = services.agents().all();
            }
            if (!adopt) {
                tellLaunchers(agents, ns, cp.getStatus().vms);
                if (placement != Level0Placement.Local) {
                    rooms = keepPartnerRoom(everyAgent, id, nodeByVm, placement);
                }
            }
            try (Coordinator coordinator = new Coordinator(agents, services.clock())) {
                Instant ts = cp.getStatus().suspendAt == null ? null : Instant.parse(cp.getStatus().suspendAt);
                // which disks the CSI driver cuts, known before anything is paused: nothing but the snapshots themselves
                // may lengthen the pause
                List<DiskSnapshots.Disk> disks = List.of();
                String disksProblem = null;
                try {
                    disks = snapshots.disksOf(ns, cp.getStatus().vms.stream().map(v -> v.name).toList(), cp.getSpec().uncapturedDisks);
                } catch (Refusal r) {
                    if (!adopt) {
                        throw r;
                    }
                    disksProblem = r.getMessage(); // picked up with VMs perhaps paused: the coordinator aborts and resumes them
                }
                ProtocolListener listener = listener(disks, disksProblem);
                report = adopt ? coordinator.adopt(id, vms, options, ts, listener) : coordinator.checkpoint(id, vms, options, listener);
                recordCapture(report, placement);
                services.metrics().checkpointTaken(report, Duration.between(started, services.clock().instant()));
                services.events().normal(cp, Reasons.CAPTURED, "every VM captured at Ts " + report.suspendAt() + " and resumed; suspend skew "
                        + KubeDuration.format(report.suspendSkew()) + ", longest pause " + KubeDuration.format(maxPause(report)));
                tellInstances(report);
                if (placement != Level0Placement.Local && !copyToPartners(everyAgent, id, rooms)) {
                    return;
                }
                rooms = null; // held now: a failure from here on keeps them
                if (plan != null) {
                    flush(coordinator, agents, report, options, plan, everyAgent, placement);
                } else {
                    if (placement == Level0Placement.Partner) {
                        releaseOwnCopies(everyAgent, id, nodeByVm.values());
                    }
                    succeed(Reasons.CAPTURED, "held in memory (L0) " + where(placement));
                }
            }
        } catch (Refusal r) {
            dropPartnerRoom(everyAgent, id, rooms);
            fail(r.reason(), r.getMessage());
        } catch (CheckpointFailedException | InterruptedException e) {
            dropPartnerRoom(everyAgent, id, rooms);
            // the coordinator has aborted on every agent it could reach, and its message says whether every VM runs
            var cancelled = services.runs().cancelled(io.mekha.operator.service.ProtocolRuns.key(cp));
            if (cancelled != null) {
                fail(cancelled.reason(), cancelled.message() + "; " + e.getMessage());
            } else if (e instanceof InterruptedException) {
                fail(Reasons.INTERRUPTED, "the operator stopped; " + e.getMessage());
            } else {
                fail(adopt ? Reasons.OPERATOR_RESTARTED : Reasons.CHECKPOINT_FAILED, e.getMessage());
            }
        } catch (RuntimeException e) {
            dropPartnerRoom(everyAgent, id, rooms);
            LOG.errorf(e, "checkpoint %s/%s failed", ns, cp.getMetadata().getName());
            fail(Reasons.INTERNAL_ERROR, e.toString());
        }
    }

    private static Level0Placement placement(io.mekha.api.v1alpha1.StorageSpec storage) {
        return storage == null || storage.level0 == null || storage.level0.placement == null ? Level0Placement.Local : storage.level0.placement;
    }

    private static String where(Level0Placement placement) {
        return switch (placement) {
            case Local -> "on the VMs' nodes";
            case Partner -> "on partner nodes";
            case Both -> "on the VMs' nodes and on partner nodes";
        };
    }

    /**
     * Keeps room for every VM's memory copy on a partner node before anything is paused; refused (the checkpoint fails,
     * nothing paused) when the other nodes do not lend it.
     */
    private CheckpointStorage.PartnerRooms keepPartnerRoom(List<AgentClient> everyAgent, String id, Map<String, String> nodeByVm,
                                                            Level0Placement placement) throws Refusal {
        try (CheckpointStorage storage = new CheckpointStorage(everyAgent, services.clock())) {
            CheckpointStorage.PartnerRooms rooms = storage.reservePartners(id, nodeByVm);
            Map<String, String> partners = new java.util.TreeMap<>();
            rooms.partners().forEach((vm, node) -> partners.put(VmNames.inNamespace(cp.getMetadata().getNamespace(), vm), node));
            services.events().normal(cp, Reasons.PARTNER_ROOM_KEPT, "room kept for each VM's memory copy on another node: " + partners);
            write(st -> {
                st.level0 = new Level0Status();
                st.level0.placement = placement;
            });
            return rooms;
        } catch (CheckpointFailedException e) {
            throw new Refusal(Reasons.PARTNER_NO_ROOM, e.getMessage() + "; nothing was paused");
        }
    }

    /** Lets go of the room kept on partner nodes for a checkpoint that was not taken. */
    private void dropPartnerRoom(List<AgentClient> everyAgent, String id, CheckpointStorage.PartnerRooms rooms) {
        if (rooms != null) {
            try (CheckpointStorage storage = new CheckpointStorage(everyAgent, services.clock())) {
                storage.dropPartnerCopies(id);
            }
        }
    }

    /**
     * Copies every VM's memory copy to its partner node (into the room kept before the cut), and says where each copy
     * lives. False when that failed: the checkpoint is then held on the VMs' own nodes only, and the run has ended.
     */
    private boolean copyToPartners(List<AgentClient> everyAgent, String id, CheckpointStorage.PartnerRooms rooms) throws InterruptedException {
        String ns = cp.getMetadata().getNamespace();
        try (CheckpointStorage storage = new CheckpointStorage(everyAgent, services.clock())) {
            CheckpointStorage.PartnerReport copied = storage.replicateLevel0(id, rooms, step -> LOG.debugf("%s: %s", cp.getMetadata().getName(), step));
            Map<String, String> partners = new java.util.TreeMap<>();
            copied.partners().forEach((vm, node) -> partners.put(VmNames.inNamespace(ns, vm), node));
            write(st -> {
                if (st.level0 == null) {
                    st.level0 = new Level0Status();
                    st.level0.placement = placement(cp.getSpec().storage);
                }
                partners.forEach((vm, node) -> st.level0.copies.add(new Level0Holder(vm, node, "Partner")));
            });
            services.events().normal(cp, Reasons.PARTNER_COPIES_HELD, "every VM's memory copy is held by another node too, in "
                    + KubeDuration.format(copied.took()) + ": " + partners);
            return true;
        } catch (CheckpointFailedException e) {
            failKeepingCheckpoint(Reasons.PARTNER_COPY_FAILED, e.getMessage() + "; the checkpoint is held in memory on the VMs' own nodes"
                    + " only: a restore from it works, but not after the loss of a VM's node");
            return false;
        }
    }

    /** Level 0 on partner nodes only: the VMs' own nodes let go of their copies (a restore takes the partners'). */
    private void releaseOwnCopies(List<AgentClient> everyAgent, String id, java.util.Collection<String> nodes) {
        try (CheckpointStorage storage = new CheckpointStorage(everyAgent, services.clock())) {
            storage.releaseOwnLevel0(id, new LinkedHashSet<>(nodes));
        }
        write(st -> {
            if (st.level0 != null) {
                st.level0.copies.removeIf(c -> "Own".equals(c.role));
            }
        });
    }

    /** Names each VM's launcher pod to its node's agent, which then acts only on the QEMU in that pod. */
    private void tellLaunchers(List<AgentClient> agents, String ns, List<io.mekha.api.v1alpha1.VmProgress> vms) throws CheckpointFailedException {
        Map<String, String> nodeByVm = new java.util.LinkedHashMap<>();
        vms.forEach(v -> nodeByVm.put(v.name, v.node));
        try {
            new io.mekha.operator.service.LauncherPodIdentities(services.client()).tell(agents, ns, nodeByVm);
        } catch (io.mekha.protocol.AgentCallException e) {
            throw new CheckpointFailedException("cannot name the VMs' launcher pods to the agents: " + e.getMessage() + "; nothing was paused", e);
        }
    }

    private static List<String> agentVms(AgentClient agent) throws CheckpointFailedException {
        try {
            return agent.vms().stream().map(io.mekha.agent.api.AgentDtos.VmInfo::name).toList();
        } catch (io.mekha.protocol.AgentCallException e) {
            throw new CheckpointFailedException("cannot list the VMs of the agent on node " + agent.node() + ": " + e.getMessage(), e);
        }
    }

    private void flush(Coordinator coordinator, List<AgentClient> agents, CheckpointReport report, CheckpointOptions options, FlushPlan plan,
                       List<AgentClient> everyAgent, Level0Placement placement) throws CheckpointFailedException, InterruptedException {
        write(st -> {
            st.stage = "Flushing";
            Conditions.progressing(st.conditions, Reasons.FLUSHING, "writing the checkpoint to " + plan.levels(), generation(), now());
        });
        services.events().normal(cp, Reasons.FLUSHING, "writing every VM's state to " + plan.levels());
        Map<String, Long> sizes = new HashMap<>();
        report.vms().forEach(v -> sizes.put(v.vm(), v.figures() == null ? 0 : v.figures().bytesTransferred()));
        // every agent, not only the VMs' nodes': partners on other nodes write a VM whose node failed its write, and let go
        // of their copies when the durable level holds the checkpoint
        try (CheckpointStorage storage = new CheckpointStorage(everyAgent, services.clock())) {
            FlushReport flushed = storage.flush(CheckpointStorage.draft(cp.getMetadata().getNamespace(), report, options, now()), sizes, plan,
                    step -> LOG.debugf("%s: %s", cp.getMetadata().getName(), step));
            for (FlushReport.Write w : flushed.redone()) {
                services.events().warning(cp, Reasons.WRITTEN_FROM_PARTNER, "VM " + VmNames.inNamespace(cp.getMetadata().getNamespace(), w.vm())
                        + ": its " + w.level() + " copy written from the memory copy on node " + w.node() + (w.error() == null ? "" : ", and failed there too")
                        + ", after its own node failed the write: " + w.redoneAfter());
            }
            List<LevelName> levels = new ArrayList<>();
            if (!flushed.level0Released()) {
                levels.add(LevelName.L0);
            }
            flushed.published().keySet().stream().sorted().forEach(l -> levels.add(LevelName.valueOf(l.name())));
            if (flushed.timeToDurable() != null) {
                services.metrics().timeToDurable(flushed.timeToDurable());
            }
            if (placement == Level0Placement.Partner && !flushed.level0Released()) {
                // saved from the VMs' own copies (held streams are saved where their level-1 copy belongs); now only the partners keep L0
                releaseOwnCopies(everyAgent, report.id(), report.vms().stream().map(VmCheckpointReport::node).toList());
            } else if (flushed.level0Released()) {
                write(st -> st.level0 = null);
            }
            write(st -> {
                st.levels = levels;
                st.timeToDurable = KubeDuration.format(flushed.timeToDurable());
            });
            if (flushed.durable()) {
                succeed(Reasons.DURABLE, "held whole at " + levels + "; durable after " + KubeDuration.format(flushed.timeToDurable()));
            } else {
                failKeepingCheckpoint(Reasons.FLUSH_FAILED, "writing to " + flushed.failures().keySet() + " failed: " + flushed.failures().values()
                        + "; nothing partial was published and the memory copy (L0) is kept, so a restore from L0 still works");
            }
        }
    }

    /**
     * @param disks the VMs' PVC-backed disks, snapshotted while every VM is paused at the cut
     * @param disksProblem why the disks cannot be cut (null: they can); the checkpoint is then aborted at the cut
     */
    private ProtocolListener listener(List<DiskSnapshots.Disk> disks, String disksProblem) {
        return new ProtocolListener() {
            @Override
            public void step(String description) {
                LOG.debugf("%s/%s: %s", cp.getMetadata().getNamespace(), cp.getMetadata().getName(), description);
            }

            @Override
            public void reached(Stage stage, Instant at) {
                String name = switch (stage) {
                    case PREPARING -> "Preparing";
                    case LIVE_STAGE -> "LiveStage";
                    case SUSPENDING -> "Suspending";
                    case CAPTURED -> "Captured";
                    case RESUMING -> "Resuming";
                    case STREAMING -> "Streaming";
                    case RESUMED -> "Resumed";
                };
                List<String> vms = cp.getStatus().vms.stream().map(v -> v.name).toList();
                String ns = cp.getMetadata().getNamespace();
                if (stage == Stage.CAPTURED) {
                    Instant since = now();
                    later(() -> paused.held(ns, vms, "held paused at the cut of VirtualClusterCheckpoint " + cp.getMetadata().getName()
                            + " by Mekha until every VM of it is captured and they all resume together", since));
                } else if (stage == Stage.STREAMING || stage == Stage.RESUMED) {
                    later(() -> paused.released(ns, vms));
                }
                writeLater(st -> {
                    st.stage = name;
                    if (stage == Stage.SUSPENDING) {
                        st.suspendAt = at.toString();
                    } else if (stage == Stage.RESUMING) {
                        st.resumeAt = at.toString();
                    }
                    Conditions.progressing(st.conditions, name, "checkpoint protocol: " + name, generation(), now());
                });
            }

            /** The VMs' PVC-backed disks, cut by CSI snapshots while every VM is paused at the cut. */
            @Override
            public void whileSuspended(String id) throws CheckpointFailedException, InterruptedException {
                if (disksProblem != null) {
                    throw new CheckpointFailedException(disksProblem);
                }
                if (disks.isEmpty()) {
                    return;
                }
                List<VolumeSnapshotRef> taken = snapshots.take(cp.getMetadata().getNamespace(), id, cp.getSpec().volumeSnapshotClassName,
                        disks, SNAPSHOT_TIMEOUT);
                writeLater(st -> st.volumeSnapshots = taken);
                later(() -> services.events().normal(cp, Reasons.DISKS_CUT, "took " + taken.size()
                        + " VolumeSnapshot(s) of the VMs' PVC-backed disks at the cut"));
            }
        };
    }

    private void recordCapture(CheckpointReport report, Level0Placement placement) {
        write(st -> {
            if (st.level0 == null) {
                st.level0 = new Level0Status();
            }
            st.level0.placement = placement;
            st.level0.copies = new ArrayList<>();
            for (VmCheckpointReport v : report.vms()) {
                st.level0.copies.add(new Level0Holder(VmNames.inNamespace(cp.getMetadata().getNamespace(), v.vm()), v.node(), "Own"));
            }
            st.stage = "Captured";
            st.readyToUse = true;
            st.suspendAt = report.suspendAt().toString();
            st.resumeAt = report.resumeAt().toString();
            st.suspendSkew = KubeDuration.format(report.suspendSkew());
            st.resumeSkew = KubeDuration.format(report.resumeSkew());
            st.maxPausedTime = KubeDuration.format(maxPause(report));
            st.totalBytes = report.vms().stream().mapToLong(v -> v.figures() == null ? 0 : v.figures().bytesTransferred()).sum();
            st.levels = new ArrayList<>(List.of(LevelName.L0));
            List<VmProgress> vms = new ArrayList<>();
            for (VmCheckpointReport v : report.vms()) {
                VmProgress p = new VmProgress();
                p.name = VmNames.inNamespace(cp.getMetadata().getNamespace(), v.vm());
                p.node = v.node();
                p.phase = "Resumed";
                p.pausedTime = KubeDuration.format(OperatorMetrics.paused(v));
                p.bytes = v.figures() == null ? null : v.figures().bytesTransferred();
                p.suspendedAt = v.stoppedAt() == null ? null : v.stoppedAt().toString();
                p.resumedAt = v.resumedAt() == null ? null : v.resumedAt().toString();
                p.guestClockAtCut = v.guestClockAtCut() == null ? null : v.guestClockAtCut().toString();
                vms.add(p);
            }
            st.vms = vms;
        });
    }

    /**
     * KubeVirt's view stays truthful: each VM's instance gets an event saying Mekha paused it, for
     * how long and for which checkpoint (its Paused condition is virt-handler's to set, not ours).
     */
    private void tellInstances(CheckpointReport report) {
        for (VmCheckpointReport vm : report.vms()) {
            var vmi = services.client().genericKubernetesResources(io.mekha.operator.service.KubeVirt.INSTANCES)
                    .inNamespace(cp.getMetadata().getNamespace()).withName(VmNames.inNamespace(cp.getMetadata().getNamespace(), vm.vm())).get();
            if (vmi != null) {
                services.events().normal(vmi, Reasons.MEKHA_CHECKPOINT, "paused " + KubeDuration.format(OperatorMetrics.paused(vm)) + " by Mekha for "
                        + "VirtualClusterCheckpoint " + cp.getMetadata().getName() + " (stopped " + vm.stoppedAt() + ", running again "
                        + vm.resumedAt() + ")");
            }
        }
    }

    private static Duration maxPause(CheckpointReport report) {
        return report.vms().stream().map(OperatorMetrics::paused).filter(java.util.Objects::nonNull).max(Duration::compareTo).orElse(null);
    }

    private void succeed(String reason, String message) {
        drainWrites();
        services.metrics().checkpointFinished("succeeded", reason);
        services.events().normal(cp, Reasons.SUCCEEDED, "checkpoint ready to use: " + message);
        write(st -> {
            st.phase = Phase.Succeeded;
            st.stage = "Done";
            st.completedAt = now().toString();
            Conditions.succeeded(st.conditions, reason, message, generation(), now());
        });
    }

    /** The checkpoint was not taken: every VM runs, no copy of it is kept (its disk snapshots go too). */
    private void fail(String reason, String message) {
        fail(reason, message, false);
    }

    /** The checkpoint was taken and stays usable from what holds it, but not every level asked for was written. */
    private void failKeepingCheckpoint(String reason, String message) {
        fail(reason, message, true);
    }

    private void fail(String reason, String message, boolean checkpointKept) {
        // a cancellation (an interrupt) has been handled by now: cleared, it cannot fail the final writes below
        Thread.interrupted();
        if (cp.getStatus().vms != null) {
            paused.released(cp.getMetadata().getNamespace(), cp.getStatus().vms.stream().map(v -> v.name).toList()); // aborted: running again
        }
        if (!checkpointKept && cp.getStatus().checkpointId != null) {
            snapshots.delete(cp.getMetadata().getNamespace(), cp.getStatus().checkpointId); // no disks without the memory they go with
        }
        drainWrites();
        services.metrics().checkpointFinished("failed", reason);
        services.events().warning(cp, reason, message);
        write(st -> {
            st.phase = Phase.Failed;
            st.completedAt = now().toString();
            if (!checkpointKept) {
                st.readyToUse = false;
            }
            Conditions.failed(st.conditions, reason, message, generation(), now());
        });
    }

    private void writeLater(Consumer<VirtualClusterCheckpointStatus> change) {
        later(() -> apply(change));
    }

    /** On the writer's thread, in order with the status writes, never on the protocol's own. */
    private void later(Runnable write) {
        try {
            writer.submit(write);
        } catch (java.util.concurrent.RejectedExecutionException ignored) {
            // the run is over; its final status is written directly
        }
    }

    private void drainWrites() {
        try {
            writer.submit(() -> { }).get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.debugf("pending status writes of %s not drained: %s", cp.getMetadata().getName(), e);
        }
    }

    /**
     * Writes a status change from the run's own thread, on the writer's thread after every change queued before it, and
     * waits for it: two writers at once (a queued stage change and the capture's figures) could each start from the same
     * copy and the later one undo the other where the server does not refuse the stale write.
     */
    private void write(Consumer<VirtualClusterCheckpointStatus> change) {
        try {
            writer.submit(() -> apply(change)).get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            apply(change); // the run is over: nothing else writes
        } catch (InterruptedException e) {
            apply(change); // a cancelled run still writes how it ended
            Thread.currentThread().interrupt();
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            LOG.warnf("could not write the status of %s/%s: %s", cp.getMetadata().getNamespace(), cp.getMetadata().getName(), e.getMessage());
        }
    }

    /** Applies a status change to the latest copy (on the writer's thread). */
    private void apply(Consumer<VirtualClusterCheckpointStatus> change) {
        try {
            services.status().update(VirtualClusterCheckpoint.class, cp, change);
        } catch (RuntimeException e) {
            LOG.warnf("could not write the status of %s/%s: %s", cp.getMetadata().getNamespace(), cp.getMetadata().getName(), e.getMessage());
        }
    }

    private Long generation() {
        return cp.getMetadata().getGeneration();
    }

    private Instant now() {
        return services.clock().instant();
    }
}
