package io.mekha.operator;

import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VirtualClusterRestoreStatus;
import io.mekha.api.v1alpha1.VmRestoreResult;
import io.mekha.operator.run.CheckpointSettings;
import io.mekha.operator.run.RestoreRun;
import io.mekha.operator.service.OperatorServices;
import io.mekha.operator.service.ProtocolRuns;
import io.mekha.operator.service.Refusal;
import io.mekha.operator.service.SourceLocks;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * Reconciles VirtualClusterRestores: checks the checkpoint is ready to use, claims its VMs (one
 * checkpoint or restore at a time per VM), marks the restore InProgress and starts a
 * {@link RestoreRun}; then only observes the deadline. A restore whose operator restarted mid-way
 * is failed with what to check, never silently re-run.
 */
@ControllerConfiguration(name = "virtualclusterrestore")
public class RestoreReconciler implements Reconciler<VirtualClusterRestore> {
    private final OperatorServices services;

    public RestoreReconciler(OperatorServices services) {
        this.services = services;
    }

    @Override
    public UpdateControl<VirtualClusterRestore> reconcile(VirtualClusterRestore restore, Context<VirtualClusterRestore> context) {
        if (restore.getStatus() == null) {
            // a real API server keeps no status on a new object
            restore.setStatus(new VirtualClusterRestoreStatus());
        }
        var st = restore.getStatus();
        if (st.phase != null && st.phase.terminal()) {
            return UpdateControl.noUpdate();
        }
        String uid = ProtocolRuns.key(restore);
        String ns = restore.getMetadata().getNamespace();
        Duration deadline;
        try {
            deadline = CheckpointSettings.deadline(restore.getSpec().failureDeadline);
        } catch (Refusal r) {
            return failNow(restore, r.reason(), r.getMessage());
        }
        String created = restore.getMetadata().getCreationTimestamp();
        Duration left = Duration.between(now(), (created == null ? now() : Instant.parse(created)).plus(deadline));

        if (st.phase == Phase.InProgress) {
            if (services.runs().running(uid)) {
                if ((left.isNegative() || left.isZero())) {
                    services.runs().cancel(uid, Reasons.FAILURE_DEADLINE_EXCEEDED, "the failureDeadline of " + shown(restore.getSpec().failureDeadline) + " passed");
                }
                return observeAgain(left);
            }
            // a restore on KubeVirt may have left its annotation and node pin on the VMs' templates: a later start of such a
            // VM would wait for a state nobody feeds it
            new io.mekha.operator.service.VmiRecreation(services.client(), Duration.ZERO).finish(ns, st.vms == null ? List.of()
                    : st.vms.stream().map(v -> v.name).toList());
            // the QEMUs loaded or fed for this restart wait for a Tr nobody sends now: stopped at once, not left paused
            String dropped = dropLoaded(ns, restore.getSpec().checkpointName);
            return failNow(restore, Reasons.OPERATOR_RESTARTED, "the operator restarted while this restore ran" + dropped + "; check the VMs (kubectl get vmi -n "
                    + ns + ") and create a new VirtualClusterRestore to restart them from the checkpoint again");
        }
        if ((left.isNegative() || left.isZero())) {
            var waiting = Conditions.get(restore.getStatus().conditions, Conditions.READY);
            return failNow(restore, Reasons.FAILURE_DEADLINE_EXCEEDED, "not started within the failureDeadline of " + shown(restore.getSpec().failureDeadline)
                    + (waiting == null ? "" : ": " + waiting.getMessage()));
        }
        VirtualClusterCheckpoint cp = services.client().resources(VirtualClusterCheckpoint.class).inNamespace(ns)
                .withName(restore.getSpec().checkpointName).get();
        if (cp == null) {
            return failNow(restore, Reasons.CHECKPOINT_NOT_FOUND, "no VirtualClusterCheckpoint '" + restore.getSpec().checkpointName
                    + "' in namespace " + ns + " (kubectl get vccp -n " + ns + ")");
        }
        if (cp.getStatus() == null || !Boolean.TRUE.equals(cp.getStatus().readyToUse)) {
            Phase phase = cp.getStatus() == null ? null : cp.getStatus().phase;
            if (phase == Phase.Failed) {
                return failNow(restore, Reasons.CHECKPOINT_NOT_READY, "checkpoint " + cp.getMetadata().getName() + " Failed and holds nothing to restore from");
            }
            return waitFor(restore, Reasons.CHECKPOINT_NOT_READY, "checkpoint " + cp.getMetadata().getName() + " is not ready to use yet ("
                    + (phase == null ? "Pending" : phase) + "); waiting", left);
        }
        List<String> vms = cp.getStatus().vms.stream().map(v -> v.name).toList();
        String holder = SourceLocks.holder(restore);
        Optional<String> taken = services.locks().claim(ns, vms, holder);
        if (taken.isPresent()) {
            return waitFor(restore, Reasons.SOURCE_LOCKED, "a VM of checkpoint " + cp.getMetadata().getName() + " is being checkpointed or restored by "
                    + taken.get() + "; waiting for it to finish (until the failureDeadline)", left);
        }
        boolean written = services.status().update(VirtualClusterRestore.class, restore, status -> {
            status.phase = Phase.InProgress;
            status.startedAt = now().toString();
            status.observedGeneration = restore.getMetadata().getGeneration();
            status.vms = cp.getStatus().vms.stream().map(v -> {
                VmRestoreResult r = new VmRestoreResult();
                r.name = v.name;
                r.node = v.node;
                return r;
            }).toList();
            Conditions.progressing(status.conditions, Reasons.STARTED, "restoring " + vms.size() + " VMs from checkpoint " + cp.getMetadata().getName(),
                    restore.getMetadata().getGeneration(), now());
        });
        if (!written) {
            services.locks().release(ns, holder);
            return UpdateControl.noUpdate();
        }
        services.runs().start(uid, new RestoreRun(services, restore, cp));
        return observeAgain(left);
    }

    /** Tells every agent to stop what it loaded for a restart of the checkpoint; says what could not be told. */
    private String dropLoaded(String ns, String checkpointName) {
        VirtualClusterCheckpoint cp = services.client().resources(VirtualClusterCheckpoint.class).inNamespace(ns).withName(checkpointName).get();
        if (cp == null || cp.getStatus() == null || cp.getStatus().checkpointId == null) {
            return "";
        }
        List<String> unreached = new java.util.ArrayList<>();
        for (io.mekha.protocol.AgentClient agent : services.agents().all()) {
            try {
                agent.dropLoaded(cp.getStatus().checkpointId);
            } catch (io.mekha.protocol.AgentCallException e) {
                unreached.add(agent.node() + " (" + e.getMessage() + ")");
            }
        }
        return unreached.isEmpty() ? "; the VMs it had loaded were stopped"
                : "; the VMs it had loaded were stopped except on " + unreached + ", where they stop after " + io.mekha.agent.api.AgentDtos.LOADED_HOLD.toMinutes() + " min";
    }

    private UpdateControl<VirtualClusterRestore> waitFor(VirtualClusterRestore restore, String reason, String message, Duration left) {
        var before = Conditions.get(restore.getStatus().conditions, Conditions.PROGRESSING);
        boolean news = before == null || !reason.equals(before.getReason());
        services.status().update(VirtualClusterRestore.class, restore, status -> {
            status.phase = Phase.Pending;
            Conditions.waiting(status.conditions, reason, message, restore.getMetadata().getGeneration(), now());
        });
        if (news) {
            services.events().normal(restore, reason, message);
        }
        return observeAgain(left);
    }

    private UpdateControl<VirtualClusterRestore> failNow(VirtualClusterRestore restore, String reason, String message) {
        services.metrics().restoreFinished("failed", reason, "none");
        services.events().warning(restore, reason, message);
        services.status().update(VirtualClusterRestore.class, restore, status -> {
            status.phase = Phase.Failed;
            status.completedAt = now().toString();
            Conditions.failed(status.conditions, reason, message, restore.getMetadata().getGeneration(), now());
        });
        services.locks().release(restore.getMetadata().getNamespace(), SourceLocks.holder(restore));
        return UpdateControl.noUpdate();
    }

    private UpdateControl<VirtualClusterRestore> observeAgain(Duration left) {
        return UpdateControl.<VirtualClusterRestore>noUpdate().rescheduleAfter(services.nextLook(left));
    }

    private static String shown(String failureDeadline) {
        return failureDeadline == null ? "5m (the default)" : failureDeadline;
    }

    private Instant now() {
        return services.clock().instant();
    }
}
