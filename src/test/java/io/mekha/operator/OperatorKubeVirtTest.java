package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VirtualClusterRestoreSpec;
import io.mekha.kubevirt.KubeVirtNode;
import io.mekha.kubevirt.LauncherPods;
import io.mekha.local.DirtierLog;
import io.mekha.model.VmSpec;
import io.mekha.operator.service.AgentCertificates;
import io.mekha.operator.service.KubeVirt;
import io.mekha.operator.service.VmiPausedCondition;
import io.mekha.operator.service.VmiRecreation;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operator with agents on KubeVirt: the mock API server holds the VirtualMachines; a test
 * controller plays KubeVirt (instances from the VMs' templates, and behind each a real QEMU started
 * as virt-launcher starts it, with Mekha's hook arguments for its annotations); the agent runs the
 * KubeVirt runtime over this machine's real process table, serves over mutual TLS with a certificate
 * the operator signed from its CertificateSigningRequest, and checks the operator's TokenReview identity. A checkpoint succeeds; both VMs' pods die and KubeVirt starts them afresh; a restore
 * recreates their instances with the restore annotation on the node holding their state, the agent
 * feeds the new QEMUs, and each guest goes on from the cut exactly. The VMs' templates are left as
 * they were.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class OperatorKubeVirtTest {
    static final String NS = "hpc";
    static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path work;

    @Test
    void aCheckpointOfVmisRestoresIntoRecreatedInstancesAndTheGuestsGoOnExactly() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        Map<String, VmSpec> machines = new LinkedHashMap<>();
        machines.put("vm1", TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 150"));
        machines.put("vm2", TestVms.dirtier("vm2", 256, "-m 24 -d 6 -i 150"));
        int agentPort = KubeVirtRig.freePort();
        try (MockKubernetes kube = new MockKubernetes();
             // the operator's CA and signer; the agent pod asks it for its serving certificate before it serves, as the DaemonSet's does
             AgentCertificates tls = new AgentCertificates(kube.client, MockKubernetes.AGENT_NAMESPACE, "mekha-agent",
                     Map.of("app.kubernetes.io/name", "mekha-agent"), Clock.systemUTC()).start();
             LauncherPods pods = new LauncherPods(work);
             KubeVirtNode node = KubeVirtRig.agentNode(work, kube, tls, agentPort)) {
            KubernetesClient client = kube.client;
            kube.namespace(NS);
            // vm1 keeps its data on a PVC (cut by a CSI snapshot); vm2 boots from a containerDisk (its overlay copied by the
            // agent) and has a hostDisk it only reads
            client.persistentVolumeClaims().inNamespace(NS).resource(new io.fabric8.kubernetes.api.model.PersistentVolumeClaimBuilder()
                    .withNewMetadata().withName("vm1-data").withNamespace(NS).endMetadata().withNewSpec().withStorageClassName("csi-rbd")
                    .withAccessModes("ReadWriteOnce").withNewResources().addToRequests("storage", new io.fabric8.kubernetes.api.model.Quantity("1Gi"))
                    .endResources().endSpec().build()).create();
            kube.vm(NS, "vm1", Map.of("app", "hpc"), List.of(Map.of("name", "data", "persistentVolumeClaim", Map.of("claimName", "vm1-data"))));
            kube.vm(NS, "vm2", Map.of("app", "hpc"), List.of(Map.of("name", "rootdisk", "containerDisk", Map.of("image", "example/hpc:1")),
                    Map.of("name", "reference", "hostDisk", Map.of("path", "/data/reference.img", "type", "Disk"))));
            try (FakeVirtController kubevirt = new FakeVirtController(client, NS, pods, machines, "n1");
                 TestOperator operator = new TestOperator(client, Clock.systemUTC(), tls)) {
                for (String vm : machines.keySet()) {
                    KubeVirtRig.awaitUntil(() -> KubeVirtRig.running(kubevirt, vm), "VM " + vm + " started by KubeVirt");
                    LauncherPods.awaitRound(kubevirt.launcher(vm).console(), 5);
                }

                // vm2's hostDisk is a file on one node that Mekha does not cut: refused, with the way out named
                VirtualClusterCheckpoint refused = OperatorCheckpointTest.checkpoint("cp0", null, null, null);
                refused.getSpec().vms = List.of("vm1", "vm2");
                client.resource(refused).create();
                refused = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp0", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
                assertThat(refused.getStatus().phase).isEqualTo(Phase.Failed);
                assertThat(refused.getStatus().conditions).anySatisfy(c -> assertThat(c.getReason()).isEqualTo("DiskNotCaptured"));
                assertThat(io.mekha.api.v1alpha1.Conditions.get(refused.getStatus().conditions, "Ready").getMessage())
                        .contains("volume 'reference' (hostDisk)").contains("spec.uncapturedDisks: Discard");

                // KubeVirt's view while Mekha holds the VMs: their Paused condition, watched as it comes and goes
                Set<String> seenPaused = java.util.concurrent.ConcurrentHashMap.newKeySet();
                var watch = client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(NS).watch(new io.fabric8.kubernetes.client.Watcher<>() {
                    @Override
                    public void eventReceived(Action action, GenericKubernetesResource vmi) {
                        if (Serialization.asJson(vmi.getAdditionalProperties().get("status")).contains(VmiPausedCondition.REASON)) {
                            seenPaused.add(vmi.getMetadata().getName());
                        }
                    }

                    @Override
                    public void onClose(io.fabric8.kubernetes.client.WatcherException cause) {
                    }
                });
                VirtualClusterCheckpoint cp = OperatorCheckpointTest.checkpoint("cp1", null, List.of(LevelName.L1), null);
                cp.getSpec().vms = List.of("vm1", "vm2");
                cp.getSpec().uncapturedDisks = io.mekha.api.v1alpha1.UncapturedDisks.Discard;
                client.resource(cp).create();
                cp = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp1", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
                assertThat(cp.getStatus().phase).as(String.valueOf(cp.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                assertThat(cp.getStatus().levels).containsExactly(LevelName.L0, LevelName.L1);
                assertThat(cp.getStatus().vms).extracting(v -> v.name + "@" + v.node).containsExactlyInAnyOrder("vm1@n1", "vm2@n1");
                assertThat(cp.getStatus().vms).allSatisfy(v -> assertThat(v.bytes).isPositive());
                // vm1's PVC was cut while every VM was paused: after the last VM stopped, before the first ran again
                var taken = cp.getStatus();
                assertThat(taken.volumeSnapshots).singleElement().satisfies(d -> {
                    assertThat(d.vm + "/" + d.volume + " <- " + d.claim).isEqualTo("vm1/data <- vm1-data");
                    java.time.Instant cut = java.time.Instant.parse(d.creationTime);
                    assertThat(cut).isAfterOrEqualTo(taken.vms.stream().map(v -> java.time.Instant.parse(v.suspendedAt))
                            .max(java.time.Instant::compareTo).orElseThrow());
                    assertThat(cut).isBefore(taken.vms.stream().map(v -> java.time.Instant.parse(v.resumedAt))
                            .min(java.time.Instant::compareTo).orElseThrow());
                });
                assertThat(KubeVirtRig.events(client, NS, "cp1")).contains("DisksCut");
                assertThat(seenPaused).as("each VMI showed Mekha's Paused condition while held").containsExactlyInAnyOrder("vm1", "vm2");
                watch.close();
                for (String vm : machines.keySet()) {
                    KubeVirtRig.awaitUntil(() -> !Serialization.asJson(client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(NS).withName(vm).get())
                            .contains(VmiPausedCondition.REASON), vm + "'s Paused condition gone once it runs again");
                }
                Map<String, Long> cutRound = new HashMap<>();
                for (String vm : machines.keySet()) {
                    cutRound.put(vm, DirtierLog.lastRoundReached(Files.readString(kubevirt.launcher(vm).console())));
                }

                // both pods die well after the cut; KubeVirt starts each VM afresh
                Map<String, TreeMap<Long, String>> before = new HashMap<>();
                for (String vm : machines.keySet()) {
                    Path console = kubevirt.launcher(vm).console();
                    LauncherPods.awaitRound(console, cutRound.get(vm) + 6);
                    kubevirt.crash(vm);
                    before.put(vm, DirtierLog.parse(Files.readAllLines(console)));
                }
                for (String vm : machines.keySet()) {
                    KubeVirtRig.awaitUntil(() -> kubevirt.history.get(vm).size() == 2 && KubeVirtRig.running(kubevirt, vm), "VM " + vm + " started afresh");
                }

                VirtualClusterRestore restore = new VirtualClusterRestore();
                restore.setMetadata(new ObjectMetaBuilder().withName("restore1").withNamespace(NS).build());
                restore.setSpec(new VirtualClusterRestoreSpec());
                restore.setStatus(null);
                restore.getSpec().checkpointName = "cp1";
                client.resource(restore).create();
                VirtualClusterRestore done = kube.awaitStatus(VirtualClusterRestore.class, NS, "restore1",
                        r -> r.getStatus().phase != null && r.getStatus().phase.terminal(), RUN);
                assertThat(done.getStatus().phase).as(String.valueOf(done.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                assertThat(done.getStatus().restoredFrom).isEqualTo(LevelName.L0);
                assertThat(done.getStatus().vms).extracting(v -> v.name).containsExactly("vm1", "vm2");
                assertThat(KubeVirtRig.events(client, NS, "restore1")).contains("Recreating", "Restored");
                kubevirt.check();

                for (String vm : machines.keySet()) {
                    assertThat(kubevirt.history.get(vm)).as("%s: started, started afresh after the crash, recreated for the restore", vm).hasSize(3);
                    Path console = kubevirt.launcher(vm).console();
                    TreeMap<Long, String> source = before.get(vm);
                    LauncherPods.awaitRound(console, source.lastKey() + 2);
                    TreeMap<Long, String> after = DirtierLog.parse(Files.readAllLines(console));
                    assertThat(after.firstKey()).as("%s goes on from the cut", vm).isLessThanOrEqualTo(cutRound.get(vm) + 1);
                    TreeMap<Long, String[]> both = DirtierLog.overlap(source, after);
                    assertThat(both).hasSizeGreaterThanOrEqualTo(3);
                    both.forEach((round, hashes) -> assertThat(hashes[1]).as("%s round %d after the restore", vm, round).isEqualTo(hashes[0]));

                    GenericKubernetesResource machine = client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inNamespace(NS).withName(vm).get();
                    if (vm.equals("vm1")) {
                        assertThat(Serialization.asJson(machine)).as("vm1's disk is the claim restored from its snapshot")
                                .contains("\"claimName\":\"mekha-restore1-vm1-data\"");
                        var restored = client.persistentVolumeClaims().inNamespace(NS).withName("mekha-restore1-vm1-data").get();
                        assertThat(restored.getSpec().getDataSource().getName()).isEqualTo(cp.getStatus().volumeSnapshots.get(0).snapshot);
                        assertThat(restored.getSpec().getStorageClassName()).isEqualTo("csi-rbd");
                    }
                    String json = Serialization.asJson(machine);
                    assertThat(json).as("the template is as it was: no restore annotation, no pin").doesNotContain(VmiRecreation.RESTORE_FROM)
                            .doesNotContain("kubernetes.io/hostname").doesNotContain(VmiRecreation.PINNED);
                    GenericKubernetesResource vmi = client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(NS).withName(vm).get();
                    assertThat(vmi.getMetadata().getAnnotations()).as("the running instance says what it was restored from")
                            .containsEntry(VmiRecreation.RESTORE_FROM, cp.getStatus().checkpointId);
                }
                VirtualClusterCheckpoint after = client.resources(VirtualClusterCheckpoint.class).inNamespace(NS).withName("cp1").get();
                assertThat(after.getStatus().levels).as("a stream held in memory was only read: still there")
                        .containsExactly(LevelName.L0, LevelName.L1);

                // the restored VC checkpointed again as a coordinated background snapshot: every VM stopped at the cut for
                // milliseconds, its RAM as at the cut streamed into the agent's held stream while it runs; then restored from it
                VirtualClusterCheckpoint bg = OperatorCheckpointTest.checkpoint("cp2", null, List.of(LevelName.L1), null);
                bg.getSpec().vms = List.of("vm1", "vm2");
                bg.getSpec().uncapturedDisks = io.mekha.api.v1alpha1.UncapturedDisks.Discard;
                bg.getSpec().transferMode = io.mekha.api.v1alpha1.TransferModeName.BackgroundSnapshot;
                client.resource(bg).create();
                bg = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp2", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
                assertThat(bg.getStatus().phase).as(String.valueOf(bg.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                assertThat(bg.getStatus().levels).containsExactly(LevelName.L0, LevelName.L1);
                assertThat(bg.getStatus().vms).allSatisfy(v -> assertThat(v.bytes).isPositive());
                Map<String, Long> bgCut = new HashMap<>();
                Map<String, TreeMap<Long, String>> bgBefore = new HashMap<>();
                for (String vm : machines.keySet()) {
                    bgCut.put(vm, DirtierLog.lastRoundReached(Files.readString(kubevirt.launcher(vm).console())));
                }
                for (String vm : machines.keySet()) {
                    Path console = kubevirt.launcher(vm).console();
                    LauncherPods.awaitRound(console, bgCut.get(vm) + 6);
                    kubevirt.crash(vm);
                    bgBefore.put(vm, DirtierLog.parse(Files.readAllLines(console)));
                }
                for (String vm : machines.keySet()) {
                    KubeVirtRig.awaitUntil(() -> kubevirt.history.get(vm).size() == 4 && KubeVirtRig.running(kubevirt, vm), "VM " + vm + " started afresh");
                }
                VirtualClusterRestore fromBg = new VirtualClusterRestore();
                fromBg.setMetadata(new ObjectMetaBuilder().withName("restore2").withNamespace(NS).build());
                fromBg.setSpec(new VirtualClusterRestoreSpec());
                fromBg.setStatus(null);
                fromBg.getSpec().checkpointName = "cp2";
                client.resource(fromBg).create();
                VirtualClusterRestore bgDone = kube.awaitStatus(VirtualClusterRestore.class, NS, "restore2",
                        r -> r.getStatus().phase != null && r.getStatus().phase.terminal(), RUN);
                assertThat(bgDone.getStatus().phase).as(String.valueOf(bgDone.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                assertThat(bgDone.getStatus().restoredFrom).isEqualTo(LevelName.L0);
                for (String vm : machines.keySet()) {
                    Path console = kubevirt.launcher(vm).console();
                    TreeMap<Long, String> source = bgBefore.get(vm);
                    LauncherPods.awaitRound(console, source.lastKey() + 2);
                    TreeMap<Long, String> again = DirtierLog.parse(Files.readAllLines(console));
                    assertThat(again.firstKey()).as("%s goes on from the background snapshot's cut", vm).isLessThanOrEqualTo(bgCut.get(vm) + 1);
                    TreeMap<Long, String[]> both = DirtierLog.overlap(source, again);
                    assertThat(both).hasSizeGreaterThanOrEqualTo(3);
                    both.forEach((round, hashes) -> assertThat(hashes[1]).as("%s round %d after the second restore", vm, round).isEqualTo(hashes[0]));
                }
            }
        }
    }
}
