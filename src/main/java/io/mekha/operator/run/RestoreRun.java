package io.mekha.operator.run;

import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.KubeDuration;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.TimePolicyName;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VirtualClusterRestoreStatus;
import io.mekha.api.v1alpha1.VmRestoreResult;
import io.mekha.operator.service.OperatorServices;
import io.mekha.operator.service.Refusal;
import io.mekha.operator.service.VmiRecreation;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.RestartReport;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * One restore's run, off the reconciler's thread: the fastest level holding the checkpoint whole
 * and verified (falling back level by level), every VM started from it and resumed together.
 */
public final class RestoreRun implements Runnable {
    private static final Logger LOG = Logger.getLogger(RestoreRun.class);

    private final OperatorServices services;
    private final VirtualClusterRestore restore;
    private final VirtualClusterCheckpoint checkpoint;

    public RestoreRun(OperatorServices services, VirtualClusterRestore restore, VirtualClusterCheckpoint checkpoint) {
        this.services = services;
        this.restore = restore;
        this.checkpoint = checkpoint;
    }

    @Override
    public void run() {
        try {
            restore();
        } finally {
            services.locks().release(restore.getMetadata().getNamespace(), io.mekha.operator.service.SourceLocks.holder(restore));
        }
    }

    private void restore() {
        String ns = restore.getMetadata().getNamespace();
        try {
            VirtualClusterCheckpointSpec taken = CheckpointSettings.takenWith(checkpoint);
            StorageTarget level2 = CheckpointSettings.level2(services.client(), ns, services.agents().namespace(), taken.storage);
            TimePolicyName policy = restore.getSpec().timePolicy != null ? restore.getSpec().timePolicy
                    : taken.timePolicy != null ? taken.timePolicy : TimePolicyName.Virtual;
            Duration slew = KubeDuration.parse("spec.slewPeriod", restore.getSpec().slewPeriod, Duration.ofSeconds(60));
            StorageLevel preferred = restore.getSpec().preferredLevel == null ? StorageLevel.L0 : restore.getSpec().preferredLevel.toLevel();
            List<AgentClient> agents = services.agents().all();
            if (agents.isEmpty()) {
                throw new Refusal(Reasons.AGENT_NOT_FOUND, "no Mekha agent is ready on any node");
            }
            services.events().normal(restore, Reasons.RESTORING, "restarting " + checkpoint.getStatus().vms.size() + " VMs from checkpoint "
                    + checkpoint.getMetadata().getName() + ", trying " + preferred + " first");
            boolean onKubeVirt = kubevirtAgents(agents);
            VmiRecreation recreation = new VmiRecreation(services.client(), RECREATE_TIMEOUT);
            Map<String, String> recreated = new LinkedHashMap<>();
            String id = checkpoint.getStatus().checkpointId;
            try (Coordinator coordinator = new Coordinator(agents, services.clock());
                 CheckpointStorage storage = new CheckpointStorage(agents, services.clock())) {
                CheckpointStorage.RestoreReport report = storage.restore(ns, id, preferred, level2, policy.toPolicy(), slew,
                        step -> LOG.debugf("%s: %s", restore.getMetadata().getName(), step), (level, nodes) -> {
                            if (onKubeVirt) {
                                services.events().normal(restore, Reasons.RECREATING, "recreating the instances of " + nodes.size() + " VMs, each on the node"
                                        + " holding its state at " + level + ", to start waiting for it");
                                recreated.putAll(nodes);
                                List<io.mekha.api.v1alpha1.VolumeSnapshotRef> disks = checkpoint.getStatus().volumeSnapshots == null
                                        ? List.of() : checkpoint.getStatus().volumeSnapshots;
                                recreation.recreate(ns, id, nodes, disks, restore.getMetadata().getName());
                                // the new instances' launcher pods, named to the agents: only the QEMU in each gets the VM's state
                                Map<String, String> nodeByVm = new LinkedHashMap<>();
                                nodes.forEach((onAgent, node) -> nodeByVm.put(io.mekha.operator.service.VmNames.inNamespace(ns, onAgent), node));
                                var pods = recreation.awaitLaunchers(ns, nodeByVm.keySet());
                                try {
                                    new io.mekha.operator.service.LauncherPodIdentities(services.client()).tell(agents, ns, nodeByVm, pods);
                                } catch (io.mekha.protocol.AgentCallException e) {
                                    throw new CheckpointFailedException("cannot name the new launcher pods to the agents: " + e.getMessage(), e);
                                }
                            }
                        });
                succeed(report, onKubeVirt);
            } finally {
                recreation.finish(ns, recreated.keySet());
            }
        } catch (Refusal r) {
            fail(r.reason(), r.getMessage());
        } catch (IllegalArgumentException e) {
            fail(Reasons.INVALID_SPEC, e.getMessage());
        } catch (CheckpointFailedException e) {
            fail(Reasons.RESTORE_FAILED, e.getMessage());
        } catch (InterruptedException e) {
            var cancelled = services.runs().cancelled(io.mekha.operator.service.ProtocolRuns.key(restore));
            fail(cancelled != null ? cancelled.reason() : Reasons.INTERRUPTED, (cancelled != null ? cancelled.message() : "the operator stopped")
                    + "; the restore was interrupted: check the VMs (kubectl get vmi) and create a new VirtualClusterRestore");
        } catch (RuntimeException e) {
            LOG.errorf(e, "restore %s/%s failed", ns, restore.getMetadata().getName());
            fail(Reasons.INTERNAL_ERROR, e.toString());
        }
    }

    /** How long KubeVirt may take to schedule the recreated instances. */
    private static final Duration RECREATE_TIMEOUT = Duration.ofMinutes(5);

    /** Whether the agents drive KubeVirt's VMIs (they then restore into new instances) rather than QEMUs of their own. */
    private static boolean kubevirtAgents(List<AgentClient> agents) throws CheckpointFailedException {
        for (AgentClient agent : agents) {
            try {
                if ("kubevirt".equals(agent.time().runtime())) {
                    return true;
                }
            } catch (io.mekha.protocol.AgentCallException e) {
                if (!e.unreachable()) {
                    throw new CheckpointFailedException("the agent on node " + agent.node() + " refused: " + e.getMessage(), e);
                }
            }
        }
        return false;
    }

    private void succeed(CheckpointStorage.RestoreReport report, boolean heldStreams) {
        RestartReport restart = report.restart();
        Map<String, String> skipped = new LinkedHashMap<>();
        report.skipped().forEach((level, why) -> skipped.put(level.name(), why));
        List<VmRestoreResult> vms = new ArrayList<>();
        restart.nodes().forEach((vm, node) -> {
            VmRestoreResult r = new VmRestoreResult();
            r.name = io.mekha.operator.service.VmNames.inNamespace(restore.getMetadata().getNamespace(), vm);
            r.node = node;
            Instant resumed = restart.resumedAt().get(vm);
            r.resumedAt = resumed == null ? null : resumed.toString();
            RestartReport.VmClock clock = restart.clocks().get(vm);
            if (clock != null) {
                r.guestClockAtCut = clock.guestAtCut() == null ? null : clock.guestAtCut().toString();
                r.guestClockAfter = clock.guestAfter() == null ? null : clock.guestAfter().toString();
            }
            vms.add(r);
        });
        vms.sort((a, b) -> a.name.compareTo(b.name));
        String message = "every VM resumed at " + restart.resumeAt() + " from " + report.level() + ", resume skew "
                + KubeDuration.format(restart.resumeSkew());
        // figures, events and the checkpoint first: whoever sees this status final finds them all
        services.metrics().restoreFinished("succeeded", Reasons.RESTORED, report.level().name());
        services.metrics().restoreResumeSkew(restart.resumeSkew());
        services.events().normal(restore, Reasons.RESTORED, message);
        if (report.level() == StorageLevel.L0 && !heldStreams) {
            // a restart from memory turns the shadows into the VMs: the checkpoint no longer lives there (a stream held in
            // memory, KubeVirt's level 0, was only read: it stays)
            services.status().update(VirtualClusterCheckpoint.class, checkpoint, st -> {
                st.levels.remove(LevelName.L0);
                if (st.levels.isEmpty()) {
                    st.readyToUse = false;
                }
            });
            services.events().normal(checkpoint, Reasons.MEMORY_COPY_USED, "restore " + restore.getMetadata().getName() + " restarted the VMs from the"
                    + " memory copy (L0), which became the VMs; the checkpoint is held at " + checkpoint.getStatus().levels);
        }
        for (VmRestoreResult vm : vms) {
            var vmi = services.client().genericKubernetesResources(io.mekha.operator.service.KubeVirt.INSTANCES)
                    .inNamespace(restore.getMetadata().getNamespace()).withName(vm.name).get();
            if (vmi != null) {
                services.events().normal(vmi, Reasons.MEKHA_RESTORE, "restarted by Mekha on node " + vm.node + " from checkpoint "
                        + checkpoint.getMetadata().getName() + " (" + report.level() + "), running again " + vm.resumedAt);
            }
        }
        write(st -> {
            st.phase = Phase.Succeeded;
            st.restoredFrom = LevelName.valueOf(report.level().name());
            st.skippedLevels = skipped.isEmpty() ? null : skipped;
            st.resumeAt = restart.resumeAt().toString();
            st.resumeSkew = KubeDuration.format(restart.resumeSkew());
            st.vms = vms;
            st.completedAt = now().toString();
            Conditions.succeeded(st.conditions, Reasons.RESTORED, message, restore.getMetadata().getGeneration(), now());
        });
    }

    private void fail(String reason, String message) {
        // a cancellation (an interrupt) has been handled by now: cleared, it cannot fail the final writes below
        Thread.interrupted();
        services.metrics().restoreFinished("failed", reason, "none");
        services.events().warning(restore, reason, message);
        write(st -> {
            st.phase = Phase.Failed;
            st.completedAt = now().toString();
            Conditions.failed(st.conditions, reason, message, restore.getMetadata().getGeneration(), now());
        });
    }

    private void write(Consumer<VirtualClusterRestoreStatus> change) {
        try {
            services.status().update(VirtualClusterRestore.class, restore, change);
        } catch (RuntimeException e) {
            LOG.warnf("could not write the status of %s/%s: %s", restore.getMetadata().getNamespace(), restore.getMetadata().getName(),
                    e.getMessage());
        }
    }

    private Instant now() {
        return services.clock().instant();
    }
}
