package io.mekha.operator;

import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.VirtualClusterRestoreStatus;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VmRestoreResult;
import io.mekha.operator.run.CheckpointSettings;
import io.mekha.operator.run.RestoreRun;
import io.mekha.operator.service.OperatorServices;
import io.mekha.operator.service.ProtocolRuns;
import io.mekha.operator.service.SourceLocks;
import io.mekha.operator.service.Refusal;
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
    private final OperatorServices s;

    public RestoreReconciler(OperatorServices services) {
        this.s = services;
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
            if (s.runs().running(uid)) {
                if ((left.isNegative() || left.isZero())) {
                    s.runs().cancel(uid, "FailureDeadlineExceeded", "the failureDeadline of " + shown(restore.getSpec().failureDeadline) + " passed");
                }
                return observeAgain(left);
            }
            // a restore on KubeVirt may have left its annotation and node pin on the VMs' templates: a later start of such a
            // VM would wait for a state nobody feeds it
            new io.mekha.operator.service.VmiRecreation(s.client(), Duration.ZERO).finish(ns, st.vms == null ? List.of()
                    : st.vms.stream().map(v -> v.name).toList());
            return failNow(restore, "OperatorRestarted", "the operator restarted while this restore ran; check the VMs (kubectl get vmi -n "
                    + ns + ") and create a new VirtualClusterRestore to restart them from the checkpoint again");
        }
        if ((left.isNegative() || left.isZero())) {
            var waiting = Conditions.get(restore.getStatus().conditions, Conditions.READY);
            return failNow(restore, "FailureDeadlineExceeded", "not started within the failureDeadline of " + shown(restore.getSpec().failureDeadline)
                    + (waiting == null ? "" : ": " + waiting.getMessage()));
        }
        VirtualClusterCheckpoint cp = s.client().resources(VirtualClusterCheckpoint.class).inNamespace(ns)
                .withName(restore.getSpec().checkpointName).get();
        if (cp == null) {
            return failNow(restore, "CheckpointNotFound", "no VirtualClusterCheckpoint '" + restore.getSpec().checkpointName
                    + "' in namespace " + ns + " (kubectl get vccp -n " + ns + ")");
        }
        if (cp.getStatus() == null || !Boolean.TRUE.equals(cp.getStatus().readyToUse)) {
            Phase phase = cp.getStatus() == null ? null : cp.getStatus().phase;
            if (phase == Phase.Failed) {
                return failNow(restore, "CheckpointNotReady", "checkpoint " + cp.getMetadata().getName() + " Failed and holds nothing to restore from");
            }
            return waitFor(restore, "CheckpointNotReady", "checkpoint " + cp.getMetadata().getName() + " is not ready to use yet ("
                    + (phase == null ? "Pending" : phase) + "); waiting", left);
        }
        List<String> vms = cp.getStatus().vms.stream().map(v -> v.name).toList();
        String holder = SourceLocks.holder(restore);
        Optional<String> taken = s.locks().claim(ns, vms, holder);
        if (taken.isPresent()) {
            return waitFor(restore, "SourceLocked", "a VM of checkpoint " + cp.getMetadata().getName() + " is being checkpointed or restored by "
                    + taken.get() + "; waiting for it to finish (until the failureDeadline)", left);
        }
        boolean written = s.status().update(VirtualClusterRestore.class, restore, status -> {
            status.phase = Phase.InProgress;
            status.startedAt = now().toString();
            status.observedGeneration = restore.getMetadata().getGeneration();
            status.vms = cp.getStatus().vms.stream().map(v -> {
                VmRestoreResult r = new VmRestoreResult();
                r.name = v.name;
                r.node = v.node;
                return r;
            }).toList();
            Conditions.progressing(status.conditions, "Started", "restoring " + vms.size() + " VMs from checkpoint " + cp.getMetadata().getName(),
                    restore.getMetadata().getGeneration(), now());
        });
        if (!written) {
            s.locks().release(ns, holder);
            return UpdateControl.noUpdate();
        }
        s.runs().start(uid, new RestoreRun(s, restore, cp));
        return observeAgain(left);
    }

    private UpdateControl<VirtualClusterRestore> waitFor(VirtualClusterRestore restore, String reason, String message, Duration left) {
        var before = Conditions.get(restore.getStatus().conditions, Conditions.PROGRESSING);
        boolean news = before == null || !reason.equals(before.getReason());
        s.status().update(VirtualClusterRestore.class, restore, status -> {
            status.phase = Phase.Pending;
            Conditions.waiting(status.conditions, reason, message, restore.getMetadata().getGeneration(), now());
        });
        if (news) {
            s.events().normal(restore, reason, message);
        }
        return observeAgain(left);
    }

    private UpdateControl<VirtualClusterRestore> failNow(VirtualClusterRestore restore, String reason, String message) {
        s.metrics().restoreFinished("failed", reason, "none");
        s.events().warning(restore, reason, message);
        s.status().update(VirtualClusterRestore.class, restore, status -> {
            status.phase = Phase.Failed;
            status.completedAt = now().toString();
            Conditions.failed(status.conditions, reason, message, restore.getMetadata().getGeneration(), now());
        });
        s.locks().release(restore.getMetadata().getNamespace(), SourceLocks.holder(restore));
        return UpdateControl.noUpdate();
    }

    private UpdateControl<VirtualClusterRestore> observeAgain(Duration left) {
        return UpdateControl.<VirtualClusterRestore>noUpdate().rescheduleAfter(s.nextLook(left));
    }

    private static String shown(String failureDeadline) {
        return failureDeadline == null ? "5m (the default)" : failureDeadline;
    }

    private Instant now() {
        return s.clock().instant();
    }
}
