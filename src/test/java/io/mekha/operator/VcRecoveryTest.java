package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.CheckpointTemplate;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.MekhaApi;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.RecoveryPolicy;
import io.mekha.api.v1alpha1.RecoverySpec;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointScheduleSpec;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VmProgress;
import io.mekha.operator.service.KubeVirt;
import io.mekha.operator.service.LauncherPodIdentities;
import io.mekha.operator.service.VmHealth;
import io.mekha.operator.service.VmiRecreation;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Automatic recovery's decisions on the mock API server, without QEMU: what counts as a failed VM ({@link VmHealth}, as
 * KubeVirt and the node controller report it), and the schedule's controller alone playing it through. The test plays
 * the restore controller: a restore that fails makes the next recovery pass over its checkpoint; past the budget
 * recovery stops and says why; editing the spec arms it again.
 */
@Tag("fast")
class VcRecoveryTest {
    static final String NS = "hpc";
    static final Duration GRACE = Duration.ofSeconds(30);

    MockKubernetes kube;
    KubernetesClient client;

    @BeforeEach
    void apiServer() throws Exception {
        kube = new MockKubernetes();
        client = kube.client;
        kube.namespace(NS);
    }

    @AfterEach
    void stop() {
        kube.close();
    }

    @Test
    void aVmHasFailedWhenKubeVirtOrTheNodeControllerSaySoAndOnlyThen() {
        VmHealth health = new VmHealth(client);
        Instant now = Instant.now();
        Instant later = now.plus(Duration.ofHours(1)); // a cut after every object here was made
        Instant earlier = now.minus(Duration.ofHours(1));

        assertThat(health.check(NS, "gone", later, GRACE, now).failure()).isEqualTo("VirtualMachineInstance hpc/gone is gone");
        vmi("failed", "Failed", "n1", Map.of());
        assertThat(health.check(NS, "failed", later, GRACE, now).failure()).isEqualTo("VirtualMachineInstance hpc/failed is Failed");

        node("n1", "True", now);
        String uid = vmi("vm1", "Running", "n1", Map.of());
        assertThat(health.check(NS, "vm1", later, GRACE, now).failure()).as("no launcher pod").startsWith("the launcher pod of VirtualMachineInstance hpc/vm1 is gone");
        pod("virt-launcher-vm1-x", uid, "Running");
        assertThat(health.check(NS, "vm1", later, GRACE, now).failed()).isFalse();
        assertThat(health.check(NS, "vm1", earlier, GRACE, now).failure()).as("an instance made after the cut, by no restore")
                .contains("was started again from boot").contains("its state since the cut is lost");

        String restoredUid = vmi("vm2", "Running", "n1", Map.of(VmiRecreation.RESTORE_FROM, "cp-id"));
        pod("virt-launcher-vm2-x", restoredUid, "Running");
        assertThat(health.check(NS, "vm2", earlier, GRACE, now).failed()).as("made after the cut by Mekha's restore").isFalse();

        node("n1", "Unknown", now.minusSeconds(10));
        VmHealth.Verdict within = health.check(NS, "vm1", later, GRACE, now);
        assertThat(within.failed()).isFalse();
        assertThat(within.recheckIn()).as("looked at again when the grace period ends").isEqualTo(Duration.ofSeconds(20));
        node("n1", "False", now.minusSeconds(45));
        assertThat(health.check(NS, "vm1", later, GRACE, now).failure()).startsWith("node n1 of VM hpc/vm1 is NotReady (False")
                .contains("past the grace period of 30s");
        client.nodes().withName("n1").delete();
        assertThat(health.check(NS, "vm1", later, GRACE, now).failure()).isEqualTo("node n1 of VM hpc/vm1 is gone");

        pod("virt-launcher-vm1-y", uid, "Failed");
        client.pods().inNamespace(NS).withName("virt-launcher-vm1-x").delete();
        assertThat(health.check(NS, "vm1", later, GRACE, now).failure()).contains("launcher pod").contains("Failed");
    }

    @Test
    void aFailedRestorePassesOverItsCheckpointAndPastTheBudgetRecoveryStopsUntilTheSpecChanges() throws Exception {
        try (TestOperator operator = TestOperator.schedulesOnly(client, Clock.systemUTC())) {
            VirtualClusterCheckpointSchedule schedule = schedule();
            client.resource(schedule).create();
            awaitSchedule(s -> "NothingToRestore".equals(s.getStatus().recovery.state));
            Instant cut = Instant.now().minusSeconds(600);
            succeeded("oldest", cut.minusSeconds(300));
            succeeded("older", cut);
            succeeded("newer", cut.plusSeconds(300));
            // neither VM has an instance: both failed
            awaitSchedule(s -> s.getStatus().recovery.history.size() == 1);
            VirtualClusterRestore first = restores().get(0);
            assertThat(first.getSpec().checkpointName).as("the newest checkpoint first").isEqualTo("newer");
            assertThat(first.getMetadata().getAnnotations().get(MekhaApi.RECOVERY_ANNOTATION)).contains("hpc/vm1 is gone");
            fail(first, "the memory copy is gone and no stored level holds it");

            awaitSchedule(s -> s.getStatus().recovery.history.size() == 2);
            VirtualClusterRestore second = restores().get(1);
            assertThat(second.getSpec().checkpointName).as("a restore from 'newer' failed: the next one tries 'older'").isEqualTo("older");
            var history = client.resources(VirtualClusterCheckpointSchedule.class).inNamespace(NS).withName("vc").get().getStatus().recovery.history;
            assertThat(history.get(0).phase).isEqualTo(Phase.Failed);
            assertThat(history.get(0).message).isEqualTo("the memory copy is gone and no stored level holds it");
            assertThat(history.get(0).lostWork).isNotNull();
            assertThat(KubeVirtRig.events(client, NS, "vc")).contains(Reasons.VM_FAILED, Reasons.RECOVERY_STARTED, Reasons.RECOVERY_FAILED);
            fail(second, "no agent is ready on any node");

            VirtualClusterCheckpointSchedule stopped = awaitSchedule(s -> "Stopped".equals(s.getStatus().recovery.state));
            assertThat(stopped.getStatus().recovery.message).contains("2 recoveries within 1h").contains("edit spec.recovery to arm it again");
            assertThat(KubeVirtRig.events(client, NS, "vc")).contains(Reasons.RECOVERY_STOPPED);
            assertThat(restores()).hasSize(2);

            // a person fixes the cause and edits the spec: armed again, with a fresh budget
            succeeded("fixed", cut.plusSeconds(500));
            VirtualClusterCheckpointSchedule edit = client.resources(VirtualClusterCheckpointSchedule.class).inNamespace(NS).withName("vc").get();
            edit.getSpec().recovery.maxRecoveries = 3;
            client.resource(edit).update();
            awaitSchedule(s -> s.getStatus().recovery.history.size() == 3);
            assertThat(restores().get(2).getSpec().checkpointName).isEqualTo("fixed");
        }
    }

    private String vmi(String name, String phase, String node, Map<String, String> annotations) {
        return client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(NS).resource(new GenericKubernetesResourceBuilder()
                .withApiVersion("kubevirt.io/v1").withKind("VirtualMachineInstance").withNewMetadata().withName(name).withNamespace(NS)
                .withAnnotations(annotations).endMetadata().withAdditionalProperties(Map.of("status", Map.of("phase", phase, "nodeName", node)))
                .build()).create().getMetadata().getUid();
    }

    private void pod(String name, String vmiUid, String phase) {
        var pod = client.pods().inNamespace(NS).resource(new PodBuilder().withNewMetadata().withName(name).withNamespace(NS)
                .addToLabels("kubevirt.io", "virt-launcher").addToLabels(LauncherPodIdentities.CREATED_BY, vmiUid).endMetadata().build()).create();
        pod.setStatus(new io.fabric8.kubernetes.api.model.PodStatusBuilder().withPhase(phase).build());
        client.pods().inNamespace(NS).resource(pod).updateStatus();
    }

    private void node(String name, String ready, Instant since) {
        var node = new NodeBuilder().withNewMetadata().withName(name).endMetadata().withNewStatus().addNewCondition().withType("Ready")
                .withStatus(ready).withLastTransitionTime(since.toString()).endCondition().endStatus().build();
        if (client.nodes().withName(name).get() == null) {
            client.nodes().resource(node).create();
        } else {
            client.nodes().resource(node).updateStatus();
        }
    }

    private static VirtualClusterCheckpointSchedule schedule() {
        VirtualClusterCheckpointSchedule s = new VirtualClusterCheckpointSchedule();
        s.setMetadata(new ObjectMetaBuilder().withName("vc").withNamespace(NS).build());
        s.setSpec(new VirtualClusterCheckpointScheduleSpec());
        s.getSpec().schedule = "0 0 1 1 *";
        s.getSpec().template = new CheckpointTemplate();
        s.getSpec().template.spec = new VirtualClusterCheckpointSpec();
        s.getSpec().template.spec.vms = List.of("vm1", "vm2");
        s.getSpec().recovery = new RecoverySpec();
        s.getSpec().recovery.policy = RecoveryPolicy.Automatic;
        s.getSpec().recovery.maxRecoveries = 2;
        s.getSpec().recovery.backoff = "0s";
        s.setStatus(null);
        return s;
    }

    /** A checkpoint of the schedule's that Succeeded with its cut at {@code cut}, as the checkpoint controller leaves it. */
    private void succeeded(String name, Instant cut) {
        VirtualClusterCheckpoint cp = new VirtualClusterCheckpoint();
        cp.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withLabels(Map.of(MekhaApi.SCHEDULE_LABEL, "vc")).build());
        cp.setSpec(new VirtualClusterCheckpointSpec());
        cp.getSpec().vms = List.of("vm1", "vm2");
        cp = client.resource(cp).create();
        cp.setStatus(new io.mekha.api.v1alpha1.VirtualClusterCheckpointStatus());
        cp.getStatus().phase = Phase.Succeeded;
        cp.getStatus().readyToUse = true;
        cp.getStatus().suspendAt = cut.toString();
        cp.getStatus().levels = List.of(LevelName.L0, LevelName.L1);
        cp.getStatus().vms = List.of(vm("vm1"), vm("vm2"));
        client.resource(cp).updateStatus();
    }

    private static VmProgress vm(String name) {
        VmProgress v = new VmProgress();
        v.name = name;
        v.node = "n1";
        return v;
    }

    private void fail(VirtualClusterRestore restore, String why) {
        VirtualClusterRestore r = client.resources(VirtualClusterRestore.class).inNamespace(NS).withName(restore.getMetadata().getName()).get();
        r.setStatus(new io.mekha.api.v1alpha1.VirtualClusterRestoreStatus());
        r.getStatus().phase = Phase.Failed;
        Conditions.failed(r.getStatus().conditions, Reasons.RESTORE_FAILED, why, 1L, Instant.now());
        client.resource(r).updateStatus();
    }

    private List<VirtualClusterRestore> restores() {
        return client.resources(VirtualClusterRestore.class).inNamespace(NS).withLabel(MekhaApi.SCHEDULE_LABEL, "vc").list().getItems().stream()
                .sorted(Comparator.comparing(r -> r.getMetadata().getAnnotations().get("mekha.io/recovery-detected-at"))).toList();
    }

    private VirtualClusterCheckpointSchedule awaitSchedule(java.util.function.Predicate<VirtualClusterCheckpointSchedule> test) throws Exception {
        return kube.awaitStatus(VirtualClusterCheckpointSchedule.class, NS, "vc", s -> s.getStatus().recovery != null && test.test(s),
                Duration.ofSeconds(30));
    }
}
