package io.mekha.operator;

import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.DeletionPolicy;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointStatus;
import io.mekha.api.v1alpha1.VmProgress;
import io.mekha.operator.run.CheckpointRun;
import io.mekha.operator.run.CheckpointSettings;
import io.mekha.operator.service.DiskSnapshots;
import io.mekha.operator.service.OperatorServices;
import io.mekha.operator.service.ProtocolRuns;
import io.mekha.operator.service.Refusal;
import io.mekha.operator.service.SourceLocks;
import io.mekha.operator.service.VirtualClusterResolver.Member;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.Coordinator;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Reconciles VirtualClusterCheckpoints: triggers the protocol once (Pending to InProgress, with the
 * VMs, their nodes and the checkpoint's id written to status first), then only observes: the
 * failure deadline, and runs left behind by an operator that restarted, which it picks up. The
 * protocol itself runs in a {@link CheckpointRun}. Deleting the object removes its data per its
 * deletion policy before the finalizer goes.
 */
@ControllerConfiguration(name = "virtualclustercheckpoint")
public class CheckpointReconciler implements Reconciler<VirtualClusterCheckpoint>, Cleaner<VirtualClusterCheckpoint> {
    /** Refusals that may clear up by themselves: wait for them until the failure deadline. */
    private static final Set<String> TRANSIENT = Set.of(Reasons.VIRTUAL_MACHINE_NOT_RUNNING, Reasons.AGENT_NOT_FOUND, Reasons.AGENT_NOT_READY);

    private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(CheckpointReconciler.class);

    private final OperatorServices services;

    public CheckpointReconciler(OperatorServices services) {
        this.services = services;
    }

    @Override
    public UpdateControl<VirtualClusterCheckpoint> reconcile(VirtualClusterCheckpoint cp, Context<VirtualClusterCheckpoint> context) {
        if (cp.getStatus() == null) {
            // a real API server keeps no status on a new object
            cp.setStatus(new VirtualClusterCheckpointStatus());
        }
        var st = cp.getStatus();
        String uid = ProtocolRuns.key(cp);
        if (st.phase != null && st.phase.terminal()) {
            if (st.phase == Phase.Succeeded && st.levels.contains(io.mekha.api.v1alpha1.LevelName.L0)) {
                if (!services.runs().running(uid)) {
                    // (a copy being made again runs under the checkpoint's key: looked at again once it is done)
                    recheckLevel0(cp);
                }
                return UpdateControl.<VirtualClusterCheckpoint>noUpdate().rescheduleAfter(services.observeEvery().multipliedBy(LEVEL0_RECHECK));
            }
            return UpdateControl.noUpdate();
        }
        Duration deadline;
        try {
            deadline = CheckpointSettings.deadline(cp.getSpec().failureDeadline);
        } catch (Refusal r) {
            return failNow(cp, r.reason(), r.getMessage());
        }
        Duration left = Duration.between(now(), created(cp).plus(deadline));

        if (st.phase == Phase.InProgress) {
            if (services.runs().running(uid)) {
                if (left.isNegative() || left.isZero()) {
                    services.runs().cancel(uid, Reasons.FAILURE_DEADLINE_EXCEEDED, "the failureDeadline of " + shown(cp.getSpec().failureDeadline) + " passed at stage " + st.stage);
                }
                return observeAgain(left);
            }
            // status says a run is under way but none is in this process: its operator is gone; pick it up
            services.locks().claim(cp.getMetadata().getNamespace(), st.vms.stream().map(v -> v.name).toList(), SourceLocks.holder(cp));
            services.events().normal(cp, Reasons.PICKED_UP, "picking up the checkpoint after an operator restart (it was at stage " + st.stage + ")");
            services.runs().start(uid, new CheckpointRun(services, cp, true));
            return observeAgain(left);
        }

        if (left.isNegative() || left.isZero()) {
            var waiting = Conditions.get(cp.getStatus().conditions, Conditions.READY);
            return failNow(cp, Reasons.FAILURE_DEADLINE_EXCEEDED, "not started within the failureDeadline of " + shown(cp.getSpec().failureDeadline)
                    + (waiting == null ? "" : ": " + waiting.getMessage()));
        }
        List<Member> members;
        try {
            members = services.resolver().resolve(cp.getMetadata().getNamespace(), cp.getSpec());
            CheckpointSettings.options(cp.getSpec(), members.stream().map(Member::vm).toList());
            // where level 2 goes is checked before anything is claimed or paused: a location that is missing or not
            // this namespace's fails the checkpoint with the reason
            CheckpointSettings.flushPlan(cp.getSpec().storage, CheckpointSettings.level2(services.client(), cp.getMetadata().getNamespace(),
                    services.agents().namespace(), cp.getSpec().storage));
            new DiskSnapshots(services.client()).disksOf(cp.getMetadata().getNamespace(), members.stream().map(Member::vm).toList(),
                    cp.getSpec().uncapturedDisks);
            for (String node : members.stream().map(Member::node).distinct().toList()) {
                services.agents().forNode(node);
            }
        } catch (Refusal r) {
            if (TRANSIENT.contains(r.reason())) {
                return waitFor(cp, r.reason(), r.getMessage() + "; waiting until the failureDeadline", left);
            }
            return failNow(cp, r.reason(), r.getMessage());
        }
        Optional<String> holder = services.locks().claim(cp.getMetadata().getNamespace(), members.stream().map(Member::vm).toList(), SourceLocks.holder(cp));
        if (holder.isPresent()) {
            return waitFor(cp, Reasons.SOURCE_LOCKED, "a VM of this checkpoint is being checkpointed or restored by " + holder.get()
                    + "; one checkpoint or restore at a time per VM: waiting for it to finish (until the failureDeadline)", left);
        }
        boolean written = services.status().update(VirtualClusterCheckpoint.class, cp, status -> {
            status.phase = Phase.InProgress;
            status.stage = "Preparing";
            status.checkpointId = checkpointId(cp);
            status.startedAt = now().toString();
            status.observedGeneration = cp.getMetadata().getGeneration();
            status.takenWith = cp.getSpec();
            status.vms = members.stream().map(m -> {
                VmProgress p = new VmProgress();
                p.name = m.vm();
                p.node = m.node();
                p.phase = "Pending";
                return p;
            }).toList();
            Conditions.progressing(status.conditions, Reasons.STARTED, "checkpointing " + members.size() + " VMs", cp.getMetadata().getGeneration(), now());
        });
        if (!written) {
            services.locks().release(cp.getMetadata().getNamespace(), SourceLocks.holder(cp));
            return UpdateControl.noUpdate();
        }
        services.events().normal(cp, Reasons.STARTED, "checkpointing " + members.stream().map(m -> m.vm() + "@" + m.node()).toList()
                + " as " + cp.getStatus().checkpointId);
        services.runs().start(uid, new CheckpointRun(services, cp, false));
        return observeAgain(left);
    }

    @Override
    public DeleteControl cleanup(VirtualClusterCheckpoint cp, Context<VirtualClusterCheckpoint> context) {
        String uid = ProtocolRuns.key(cp);
        if (services.runs().running(uid)) {
            services.runs().cancel(uid, "Deleted", "the checkpoint was deleted while it ran");
            return DeleteControl.noFinalizerRemoval().rescheduleAfter(Duration.ofSeconds(1));
        }
        var st = cp.getStatus();
        if (st != null && st.checkpointId != null) {
            // what it was taken with: an edit since (refused by the API server's rule, but not by every server) changes nothing
            VirtualClusterCheckpointSpec spec = st.takenWith != null ? st.takenWith : cp.getSpec();
            DeletionPolicy policy = spec.deletionPolicy == null ? DeletionPolicy.Delete : spec.deletionPolicy;
            List<AgentClient> agents = services.agents().all();
            try (Coordinator coordinator = new Coordinator(agents, services.clock());
                 CheckpointStorage storage = new CheckpointStorage(agents, services.clock())) {
                if (policy == DeletionPolicy.Delete) {
                    storage.delete(cp.getMetadata().getNamespace(), st.checkpointId,
                            CheckpointSettings.level2(services.client(), cp.getMetadata().getNamespace(),
                                    services.agents().namespace(), spec.storage));
                    new DiskSnapshots(services.client()).delete(cp.getMetadata().getNamespace(), st.checkpointId);
                } else {
                    storage.releaseLevel0(st.checkpointId);
                }
            } catch (CheckpointFailedException | Refusal e) {
                services.events().warning(cp, Reasons.DELETE_FAILED, "could not delete the checkpoint's data (" + e.getMessage()
                        + "); retrying. To give up and keep the data, remove the finalizer by hand");
                return DeleteControl.noFinalizerRemoval().rescheduleAfter(Duration.ofSeconds(10));
            }
        }
        services.locks().release(cp.getMetadata().getNamespace(), SourceLocks.holder(cp));
        return DeleteControl.defaultDelete();
    }

    /** How often a succeeded checkpoint's memory copies are checked to still be there, in observation periods. */
    static final int LEVEL0_RECHECK = 10;

    /**
     * Level 0 lives in the agents' memory: an agent restarted or a node lost takes it along. A succeeded checkpoint that
     * lists L0 asks each node's agent for it; where one answers that it holds no such checkpoint (or the node has no
     * agent any more), L0 leaves the levels, and with no level left the checkpoint is no longer ready to use. An agent
     * that cannot be reached right now changes nothing (asked again next time).
     */
    private void recheckLevel0(VirtualClusterCheckpoint cp) {
        var st = cp.getStatus();
        String ns = cp.getMetadata().getNamespace();
        List<io.mekha.api.v1alpha1.Level0Holder> copies = st.level0 != null && st.level0.copies != null && !st.level0.copies.isEmpty()
                ? st.level0.copies : st.vms.stream().filter(v -> v.node != null).map(v -> new io.mekha.api.v1alpha1.Level0Holder(v.name, v.node, "Own")).toList();
        // each node's copies as it says now; a node whose agent cannot be reached right now is left out (changes nothing)
        java.util.Map<String, java.util.Set<String>> heldOn = new java.util.HashMap<>();
        java.util.Map<String, String> why = new java.util.HashMap<>();
        for (String node : copies.stream().map(c -> c.node).distinct().toList()) {
            java.util.Set<String> held = new java.util.HashSet<>();
            try {
                AgentClient agent = services.agents().forNode(node);
                try {
                    agent.status(st.checkpointId).vms().stream().filter(v -> v.level0Held()).forEach(v -> held.add(io.mekha.operator.service.VmNames.inNamespace(ns, v.vm())));
                } catch (io.mekha.protocol.AgentCallException e) {
                    if (!e.notFound()) {
                        throw e;
                    }
                }
                agent.partners(st.checkpointId).stream().filter(p -> p.state() == io.mekha.agent.api.PartnerCopyState.HELD)
                        .forEach(p -> held.add(io.mekha.operator.service.VmNames.inNamespace(ns, p.vm())));
                heldOn.put(node, held);
                why.put(node, "its agent no longer holds it (restarted?)");
            } catch (Refusal r) {
                if (Reasons.AGENT_NOT_FOUND.equals(r.reason())) {
                    heldOn.put(node, held);
                    why.put(node, "no agent runs there now");
                }
            } catch (io.mekha.protocol.AgentCallException e) {
                // unreachable now: asked again next time
            }
        }
        List<io.mekha.api.v1alpha1.Level0Holder> gone = copies.stream().filter(c -> heldOn.containsKey(c.node) && !heldOn.get(c.node).contains(c.vm))
                .toList();
        boolean both = st.level0 != null && st.level0.placement == io.mekha.api.v1alpha1.Level0Placement.Both;
        if (gone.isEmpty()) {
            if (both) {
                // a copy not made again when the loss was seen (no node had room, or the lost node's agent was coming back)
                startRemake(cp, copies, false);
            }
            return;
        }
        List<io.mekha.api.v1alpha1.Level0Holder> kept = copies.stream().filter(c -> !gone.contains(c)).toList();
        List<String> uncovered = st.vms.stream().map(v -> v.name).filter(vm -> kept.stream().noneMatch(c -> c.vm.equals(vm))).toList();
        String lostText = String.join(", ", gone.stream().map(c -> c.vm + " on node " + c.node + " (" + why.get(c.node) + ")").toList());
        if (uncovered.isEmpty()) {
            services.events().warning(cp, Reasons.LEVEL0_COPY_LOST, "the memory copy of " + lostText + " is gone; every VM is still held in"
                    + " memory on another node, so L0 still restores the checkpoint");
            services.status().update(VirtualClusterCheckpoint.class, cp, status -> {
                if (status.level0 != null) {
                    status.level0.copies = new java.util.ArrayList<>(kept);
                }
            });
            if (both) {
                startRemake(cp, kept, true);
            }
            return;
        }
        List<io.mekha.api.v1alpha1.LevelName> left = st.levels.stream().filter(l -> l != io.mekha.api.v1alpha1.LevelName.L0).toList();
        String message = "the level-0 copy is gone: " + lostText + "; no memory copy of " + uncovered + " is left"
                + (left.isEmpty() ? "; no level holds this checkpoint any more (flush to L1 or L2, or keep level 0 on partner nodes too,"
                + " to keep one past an agent's restart or a node's loss)" : "; it is still held at " + left);
        services.events().warning(cp, Reasons.LEVEL0_LOST, message);
        services.status().update(VirtualClusterCheckpoint.class, cp, status -> {
            status.levels = new java.util.ArrayList<>(left);
            status.readyToUse = !left.isEmpty();
            if (status.level0 != null) {
                status.level0.copies = new java.util.ArrayList<>(kept);
            }
            if (left.isEmpty()) {
                Conditions.set(status.conditions, Conditions.READY, false, Reasons.LEVEL0_LOST, message, cp.getMetadata().getGeneration(), now());
            }
        });
    }

    /**
     * With {@code placement: Both}, each VM that a node's loss left in one node's memory is copied again into another
     * node's memory, handed on from the node that holds it, where the nodes lend room; the copies made join
     * {@code status.level0.copies}. Tried when the loss is seen ({@code sayWhyNot}: a VM that fits nowhere is named in an
     * event) and again at each later look, quietly, until it is made or the checkpoint goes. The copying runs under the
     * checkpoint's key in the operator's runs, as a checkpoint does: the reconcile returns at once, the next look waits
     * for it, and a deletion cancels it and waits for it to end before the agents drop the checkpoint.
     */
    private void startRemake(VirtualClusterCheckpoint cp, List<io.mekha.api.v1alpha1.Level0Holder> kept, boolean sayWhyNot) {
        String ns = cp.getMetadata().getNamespace();
        java.util.Map<String, String> holderByVm = new java.util.LinkedHashMap<>();
        for (VmProgress vm : cp.getStatus().vms) {
            List<io.mekha.api.v1alpha1.Level0Holder> held = kept.stream().filter(c -> c.vm.equals(vm.name)).toList();
            if (held.size() == 1) {
                holderByVm.put(io.mekha.operator.service.VmNames.onAgent(ns, vm.name), held.get(0).node);
            }
        }
        if (holderByVm.isEmpty()) {
            return;
        }
        services.runs().start(ProtocolRuns.key(cp), () -> {
            try {
                List<io.mekha.api.v1alpha1.Level0Holder> added = remakeCopies(cp, holderByVm, sayWhyNot);
                if (!added.isEmpty()) {
                    services.status().update(VirtualClusterCheckpoint.class, cp, status -> {
                        if (status.level0 != null) {
                            status.level0.copies.addAll(added);
                        }
                    });
                }
            } catch (RuntimeException e) {
                // an agent or the API server failing now: the next look tries again
                LOG.warnf(e, "checkpoint %s/%s: making its level-0 copies again failed", cp.getMetadata().getNamespace(), cp.getMetadata().getName());
            }
        });
    }

    /** Copies each VM again from the node that holds it ({@code holderByVm}, by the agents' names); the copies made. */
    private List<io.mekha.api.v1alpha1.Level0Holder> remakeCopies(VirtualClusterCheckpoint cp, java.util.Map<String, String> holderByVm,
                                                                  boolean sayWhyNot) {
        String ns = cp.getMetadata().getNamespace();
        try (CheckpointStorage storage = new CheckpointStorage(services.agents().all(), services.clock())) {
            CheckpointStorage.Remade remade = storage.remakePartnerCopies(cp.getStatus().checkpointId, holderByVm);
            java.util.Map<String, String> made = new java.util.TreeMap<>();
            remade.copies().forEach((vm, node) -> made.put(io.mekha.operator.service.VmNames.inNamespace(ns, vm), node));
            java.util.Map<String, String> failed = new java.util.TreeMap<>();
            remade.failures().forEach((vm, why) -> failed.put(io.mekha.operator.service.VmNames.inNamespace(ns, vm), why));
            if (!made.isEmpty()) {
                services.events().normal(cp, Reasons.LEVEL0_COPY_REMADE, "copied again into the memory of another node (VM=node): " + made
                        + (failed.isEmpty() ? "; every VM is in the memory of two nodes again" : ""));
            }
            if (!failed.isEmpty() && sayWhyNot) {
                // VMs that failed for one reason (a plan that does not fit names them all) are said once
                java.util.Map<String, List<String>> byReason = new java.util.LinkedHashMap<>();
                failed.forEach((vm, why) -> byReason.computeIfAbsent(why, w -> new java.util.ArrayList<>()).add(vm));
                List<String> reasons = byReason.entrySet().stream().map(e -> e.getValue() + ": " + e.getKey()).toList();
                services.events().warning(cp, Reasons.LEVEL0_COPY_NOT_REMADE, "no second memory copy of " + failed.keySet() + " could be made ("
                        + String.join("; ", reasons) + "); L0 restores them from one node only until a node has room (tried again at each look)"
                        + " or the next checkpoint");
            }
            return made.entrySet().stream().map(e -> new io.mekha.api.v1alpha1.Level0Holder(e.getKey(), e.getValue(), "Partner")).toList();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of();
        }
    }

    private UpdateControl<VirtualClusterCheckpoint> waitFor(VirtualClusterCheckpoint cp, String reason, String message, Duration left) {
        var before = Conditions.get(cp.getStatus().conditions, Conditions.PROGRESSING);
        boolean news = before == null || !reason.equals(before.getReason());
        services.status().update(VirtualClusterCheckpoint.class, cp, status -> {
            status.phase = Phase.Pending;
            status.observedGeneration = cp.getMetadata().getGeneration();
            Conditions.waiting(status.conditions, reason, message, cp.getMetadata().getGeneration(), now());
        });
        if (news) {
            services.events().normal(cp, reason, message);
        }
        return observeAgain(left);
    }

    private UpdateControl<VirtualClusterCheckpoint> failNow(VirtualClusterCheckpoint cp, String reason, String message) {
        services.metrics().checkpointFinished("failed", reason);
        services.events().warning(cp, reason, message);
        services.status().update(VirtualClusterCheckpoint.class, cp, status -> {
            status.phase = Phase.Failed;
            status.readyToUse = false;
            status.completedAt = now().toString();
            status.observedGeneration = cp.getMetadata().getGeneration();
            Conditions.failed(status.conditions, reason, message, cp.getMetadata().getGeneration(), now());
        });
        services.locks().release(cp.getMetadata().getNamespace(), SourceLocks.holder(cp));
        return UpdateControl.noUpdate();
    }

    private UpdateControl<VirtualClusterCheckpoint> observeAgain(Duration left) {
        return UpdateControl.<VirtualClusterCheckpoint>noUpdate().rescheduleAfter(services.nextLook(left));
    }

    /** Unique on the agents and in storage, readable in file names: namespace, name and a piece of the UID. */
    static String checkpointId(VirtualClusterCheckpoint cp) {
        String readable = cp.getMetadata().getNamespace() + "." + cp.getMetadata().getName();
        // agents take ids of at most 63 characters
        String uid = cp.getMetadata().getUid().replace("-", "");
        return (readable.length() > 54 ? readable.substring(0, 54) : readable) + "." + uid.substring(Math.max(0, uid.length() - 8));
    }


    private Instant created(VirtualClusterCheckpoint cp) {
        String ts = cp.getMetadata().getCreationTimestamp();
        return ts == null ? now() : Instant.parse(ts);
    }

    private static String shown(String failureDeadline) {
        return failureDeadline == null ? "5m (the default)" : failureDeadline;
    }

    private Instant now() {
        return services.clock().instant();
    }
}
