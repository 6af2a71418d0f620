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
import io.mekha.operator.run.InterruptedRestore;
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
 * is picked up: adopted if it finished meanwhile, else called off everywhere and started again
 * (said in its conditions and events, {@code status.attempts}), a bounded number of times.
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
            return pickUp(restore, left);
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

    /** How many times a restore is started in all, when operator restarts interrupt it. */
    static final int MAX_ATTEMPTS = 3;

    /**
     * A restore that was running when the operator restarted: adopted if every VM resumed from it meanwhile (Tr came
     * while nobody watched), else called off on every agent (VMs not resumed stay as they were, QEMUs loaded for it
     * stop) and started again, at most {@link #MAX_ATTEMPTS} times in all.
     */
    private UpdateControl<VirtualClusterRestore> pickUp(VirtualClusterRestore cached, Duration left) {
        String ns = cached.getMetadata().getNamespace();
        // a run of this operator that just ended wrote its result before it ended: the cache may not show it yet
        VirtualClusterRestore restore = services.client().resources(VirtualClusterRestore.class).inNamespace(ns)
                .withName(cached.getMetadata().getName()).get();
        if (restore == null || restore.getStatus() == null || restore.getStatus().phase != Phase.InProgress) {
            return UpdateControl.noUpdate();
        }
        var st = restore.getStatus();
        List<String> names = st.vms == null ? List.of() : st.vms.stream().map(v -> v.name).toList();
        var recreation = new io.mekha.operator.service.VmiRecreation(services.client(), Duration.ZERO);
        VirtualClusterCheckpoint cp = services.client().resources(VirtualClusterCheckpoint.class).inNamespace(ns)
                .withName(restore.getSpec().checkpointName).get();
        if (cp == null || cp.getStatus() == null || cp.getStatus().checkpointId == null || st.startedAt == null) {
            recreation.finish(ns, names);
            return failNow(restore, Reasons.OPERATOR_RESTARTED, "the operator restarted while this restore ran, and its checkpoint "
                    + restore.getSpec().checkpointName + " is gone; check the VMs (kubectl get vmi -n " + ns + ")");
        }
        String id = cp.getStatus().checkpointId;
        InterruptedRestore interrupted = new InterruptedRestore(services.agents().all());
        var finished = interrupted.finished(ns, id, new java.util.HashSet<>(cp.getStatus().vms.stream().map(v -> v.name).toList()),
                Instant.parse(st.startedAt));
        if (finished.isPresent()) {
            // a restore on KubeVirt leaves its annotation and node pin on the VMs' templates until it ends
            recreation.finish(ns, names);
            return adopt(restore, cp, finished.get());
        }
        int attempts = st.attempts == null ? 1 : st.attempts;
        List<String> unreached = interrupted.callOff(id, "the operator restarted during restore " + restore.getMetadata().getName());
        if (attempts >= MAX_ATTEMPTS || !unreached.isEmpty() || left.isNegative() || left.isZero()) {
            recreation.finish(ns, names);
            String why = !unreached.isEmpty() ? "the agents on " + unreached + " could not be told to call it off (a prepared restart is called off"
                    + " by the agent itself after 2 min, loaded QEMUs stop after " + io.mekha.agent.api.AgentDtos.LOADED_HOLD.toMinutes() + " min)"
                    : attempts >= MAX_ATTEMPTS ? "it was started " + attempts + " times, the most it is" : "its failureDeadline passed";
            return failNow(restore, Reasons.OPERATOR_RESTARTED, "the operator restarted while this restore ran; it was called off on every agent"
                    + " (VMs not resumed were left as they were) and not started again: " + why + "; check the VMs (kubectl get vmi -n " + ns
                    + ") and create a new VirtualClusterRestore");
        }
        String holder = SourceLocks.holder(restore);
        Optional<String> taken = services.locks().claim(ns, cp.getStatus().vms.stream().map(v -> v.name).toList(), holder);
        if (taken.isPresent()) {
            return failNow(restore, Reasons.OPERATOR_RESTARTED, "the operator restarted while this restore ran; it was called off on every agent and"
                    + " cannot start again: " + taken.get() + " holds a VM of checkpoint " + cp.getMetadata().getName());
        }
        String message = "the operator restarted while this restore ran: called off on every agent and started again (attempt "
                + (attempts + 1) + " of " + MAX_ATTEMPTS + ")";
        boolean written = services.status().update(VirtualClusterRestore.class, restore, status -> {
            status.attempts = attempts + 1;
            Conditions.progressing(status.conditions, Reasons.PICKED_UP, message, restore.getMetadata().getGeneration(), now());
        });
        if (!written) {
            services.locks().release(ns, holder);
            return UpdateControl.noUpdate();
        }
        services.events().normal(restore, Reasons.PICKED_UP, message);
        services.runs().start(ProtocolRuns.key(restore), new RestoreRun(services, restore, cp));
        return observeAgain(left);
    }

    /** Ends a restore whose every VM resumed while no operator watched, with what the agents report. */
    private UpdateControl<VirtualClusterRestore> adopt(VirtualClusterRestore restore, VirtualClusterCheckpoint cp, InterruptedRestore.Finished done) {
        String level = done.level() == null ? "its level" : done.level().name();
        String message = "every VM resumed from checkpoint " + cp.getMetadata().getName() + " (" + level + ") while the operator restarted;"
                + " picked up from the agents' reports";
        services.metrics().restoreFinished("succeeded", Reasons.RESTORED, done.level() == null ? "none" : done.level().name());
        services.events().normal(restore, Reasons.PICKED_UP, message);
        services.status().update(VirtualClusterRestore.class, restore, status -> {
            status.phase = Phase.Succeeded;
            status.restoredFrom = done.level() == null ? null : io.mekha.api.v1alpha1.LevelName.valueOf(done.level().name());
            status.vms = done.vms();
            status.completedAt = now().toString();
            Conditions.succeeded(status.conditions, Reasons.RESTORED, message, restore.getMetadata().getGeneration(), now());
        });
        return UpdateControl.noUpdate();
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
