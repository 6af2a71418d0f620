package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.LiveStage;
import io.mekha.api.v1alpha1.MekhaApi;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.RecoveryRecord;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.kubevirt.KubeVirtNode;
import io.mekha.kubevirt.LauncherPods;
import io.mekha.local.DirtierLog;
import io.mekha.model.VmSpec;
import io.mekha.operator.service.AgentCertificates;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Automatic recovery by the operator, on the KubeVirt runtime (mock API server, the test controller playing KubeVirt
 * with real QEMUs started as virt-launcher starts them, a real agent over mutual TLS). A schedule with
 * {@code recovery.policy: Automatic} protects a VC of two dirtiers from its checkpoint cp1. Its node goes NotReady while
 * another checkpoint is in its live stage: past the grace period the operator aborts that checkpoint, then restores the
 * VC from cp1 with a restore it creates itself, and each guest goes on from the cut hash for hash. Then KubeVirt starts a
 * VM again from boot after its pod died: restored again, exact again. A third failure finds the budget spent: recovery
 * stops and says why, and nothing more is restored.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class OperatorRecoveryTest {
    static final String NS = "hpc";
    static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path work;

    @Test
    void aFailedVmIsRestoredByTheOperatorItselfAndTheGuestsGoOnExactlyUntilTheBudgetIsSpent() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        Map<String, VmSpec> machines = new LinkedHashMap<>();
        machines.put("vm1", TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 150"));
        machines.put("vm2", TestVms.dirtier("vm2", 256, "-m 24 -d 6 -i 150"));
        int agentPort = KubeVirtRig.freePort();
        try (MockKubernetes kube = new MockKubernetes();
             AgentCertificates tls = new AgentCertificates(kube.client, MockKubernetes.AGENT_NAMESPACE, "mekha-agent",
                     Map.of("app.kubernetes.io/name", "mekha-agent"), Clock.systemUTC()).start();
             LauncherPods pods = new LauncherPods(work);
             KubeVirtNode node = KubeVirtRig.agentNode(work, kube, tls, agentPort)) {
            KubernetesClient client = kube.client;
            kube.namespace(NS);
            KubeVirtRig.nodeReady(client, "n1", true);
            for (String vm : machines.keySet()) {
                kube.vm(NS, vm, Map.of("app", "hpc"), List.of());
            }
            try (FakeVirtController kubevirt = new FakeVirtController(client, NS, pods, machines, "n1");
                 TestOperator operator = new TestOperator(client, Clock.systemUTC(), tls)) {
                for (String vm : machines.keySet()) {
                    KubeVirtRig.awaitUntil(() -> KubeVirtRig.running(kubevirt, vm), "VM " + vm + " started by KubeVirt");
                    LauncherPods.awaitRound(kubevirt.launcher(vm).console(), 5);
                }
                client.resource(KubeVirtRig.recoverySchedule(NS, checkpoint("unused", null).getSpec())).create();
                VirtualClusterCheckpointSchedule watching = kube.awaitStatus(VirtualClusterCheckpointSchedule.class, NS, "vc",
                        s -> s.getStatus().recovery != null, RUN);
                assertThat(watching.getStatus().recovery.state).as("no checkpoint yet: a failure could not be recovered").isEqualTo("NothingToRestore");

                // cp1: the schedule's checkpoint (made here rather than waiting for the cron)
                VirtualClusterCheckpoint cp1 = checkpoint("cp1", null);
                cp1.getMetadata().setLabels(Map.of(MekhaApi.SCHEDULE_LABEL, "vc"));
                client.resource(cp1).create();
                cp1 = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp1", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
                assertThat(cp1.getStatus().phase).as(String.valueOf(cp1.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                Map<String, Long> cutRound = new LinkedHashMap<>();
                for (String vm : machines.keySet()) {
                    cutRound.put(vm, DirtierLog.lastRoundReached(Files.readString(kubevirt.launcher(vm).console())));
                }
                KubeVirtRig.awaitSchedule(kube, NS, s -> "Watching".equals(s.getStatus().recovery.state) && "cp1".equals(s.getStatus().recovery.checkpoint),
                        "the schedule watches the VC of cp1");

                // a checkpoint of a person's, held in its live stage by its bandwidth, when the node goes NotReady
                LiveStage slow = new LiveStage();
                slow.bandwidthPerVm = 1_000_000L;
                slow.maxPerVm = "90s";
                slow.globalBound = "120s";
                client.resource(checkpoint("cp2", slow)).create();
                kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp2", c -> "LiveStage".equals(c.getStatus().stage), RUN);
                Instant notReady = Instant.now();
                KubeVirtRig.nodeReady(client, "n1", false);

                VirtualClusterRestore first = awaitRecoveryRestore(client, 1);
                KubeVirtRig.nodeReady(client, "n1", true);
                VirtualClusterCheckpoint cp2 = client.resources(VirtualClusterCheckpoint.class).inNamespace(NS).withName("cp2").get();
                assertThat(cp2.getStatus().phase).as("cp2 ended before the restore was made").isEqualTo(Phase.Failed);
                assertThat(Conditions.get(cp2.getStatus().conditions, Conditions.READY).getReason()).isEqualTo(Reasons.ABORTED_FOR_RECOVERY);
                assertThat(Instant.parse(cp2.getStatus().completedAt)).isBeforeOrEqualTo(Instant.parse(first.getMetadata().getCreationTimestamp())
                        .plusSeconds(1));
                assertThat(first.getSpec().checkpointName).isEqualTo("cp1");
                first = kube.awaitStatus(VirtualClusterRestore.class, NS, first.getMetadata().getName(),
                        r -> r.getStatus().phase != null && r.getStatus().phase.terminal(), RUN);
                assertThat(first.getStatus().phase).as(String.valueOf(first.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                assertThat(first.getStatus().restoredFrom).isEqualTo(LevelName.L0);
                String firstName = first.getMetadata().getName();
                RecoveryRecord one = KubeVirtRig.awaitSchedule(kube, NS, s -> s.getStatus().recovery.history.size() == 1
                        && s.getStatus().recovery.history.get(0).phase == Phase.Succeeded, "the first recovery recorded").getStatus().recovery.history.get(0);
                assertThat(one.failure).contains("node n1").contains("NotReady").contains("grace period of 2s");
                assertThat(Instant.parse(one.detectedAt)).as("seen after the grace period").isAfterOrEqualTo(notReady.plusSeconds(2));
                assertThat(one.abortedCheckpoints).containsExactly("cp2");
                assertThat(one.restore).isEqualTo(firstName);
                assertThat(one.restoredFrom).isEqualTo(LevelName.L0);
                assertThat(one.lostWork).isNotNull();
                assertThat(one.restoreTook).isNotNull();
                assertThat(KubeVirtRig.events(client, NS, "vc")).contains(Reasons.VM_FAILED, Reasons.ABORTED_FOR_RECOVERY, Reasons.RECOVERY_STARTED, Reasons.RECOVERED);
                for (String vm : machines.keySet()) {
                    KubeVirtRig.assertExact(kubevirt, vm, cutRound.get(vm));
                }

                // vm2's pod dies and KubeVirt starts it again from boot: the VC comes back from cp1 again
                KubeVirtRig.awaitSchedule(kube, NS, s -> "Watching".equals(s.getStatus().recovery.state), "watching again after the first recovery");
                kubevirt.crash("vm2");
                VirtualClusterRestore second = awaitRecoveryRestore(client, 2);
                second = kube.awaitStatus(VirtualClusterRestore.class, NS, second.getMetadata().getName(),
                        r -> r.getStatus().phase != null && r.getStatus().phase.terminal(), RUN);
                assertThat(second.getStatus().phase).as(String.valueOf(second.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                RecoveryRecord two = KubeVirtRig.awaitSchedule(kube, NS, s -> s.getStatus().recovery.history.size() == 2
                        && s.getStatus().recovery.history.get(1).phase == Phase.Succeeded, "the second recovery recorded").getStatus().recovery.history.get(1);
                assertThat(two.failure).contains("vm2");
                for (String vm : machines.keySet()) {
                    KubeVirtRig.assertExact(kubevirt, vm, cutRound.get(vm));
                }

                // a third failure within the window: the budget (2) is spent; recovery stops, says why, restores nothing
                KubeVirtRig.awaitSchedule(kube, NS, s -> "Watching".equals(s.getStatus().recovery.state), "watching again after the second recovery");
                kubevirt.crash("vm1");
                VirtualClusterCheckpointSchedule stopped = KubeVirtRig.awaitSchedule(kube, NS, s -> "Stopped".equals(s.getStatus().recovery.state), "recovery stopped");
                assertThat(stopped.getStatus().recovery.message).contains("vm1").contains("2 recoveries within 1h").contains("edit spec.recovery");
                assertThat(KubeVirtRig.events(client, NS, "vc")).contains(Reasons.RECOVERY_STOPPED);
                KubeVirtRig.awaitUntil(() -> KubeVirtRig.running(kubevirt, "vm1"), "vm1 started from boot by KubeVirt");
                assertThat(KubeVirtRig.recoveryRestores(client, NS)).as("no third restore").hasSize(2);
                assertThat(operator.meters.find("mekha.recoveries").tag("result", "succeeded").counter().count()).isEqualTo(2.0);
                kubevirt.check();
            }
        }
    }

    private static VirtualClusterCheckpoint checkpoint(String name, LiveStage live) {
        VirtualClusterCheckpoint cp = new VirtualClusterCheckpoint();
        cp.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).build());
        cp.setSpec(new VirtualClusterCheckpointSpec());
        cp.getSpec().vms = List.of("vm1", "vm2");
        cp.getSpec().liveStage = live;
        cp.getSpec().failureDeadline = "10m";
        cp.setStatus(null);
        return cp;
    }

    private static VirtualClusterRestore awaitRecoveryRestore(KubernetesClient client, int count) throws InterruptedException {
        KubeVirtRig.awaitUntil(() -> KubeVirtRig.recoveryRestores(client, NS).size() >= count, "recovery restore number " + count + " created by the operator");
        List<VirtualClusterRestore> all = KubeVirtRig.recoveryRestores(client, NS);
        assertThat(all).hasSize(count);
        return all.stream().max(java.util.Comparator.comparing(r -> r.getMetadata().getName())).orElseThrow();
    }
}
