package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.agent.AgentException;
import io.mekha.agent.api.PartnerCopyState;
import io.mekha.agent.api.PartnerKind;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.Level0Holder;
import io.mekha.api.v1alpha1.Level0Placement;
import io.mekha.api.v1alpha1.Level0Spec;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.MekhaApi;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.StorageSpec;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
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
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Level 0 on a partner node, on the KubeVirt runtime (mock API server, the test controller playing KubeVirt with real
 * QEMUs started as virt-launcher starts them, three real agents n1, n2 and n3 over mutual TLS, each seeing only its
 * node's pods). vm1 runs on n1, vm2 on n2; n3 runs none. A checkpoint whose partners do not lend the memory is refused
 * before anything is paused. With n2's disk failing, cp2's flush to L1 writes vm2 from the copy n1 holds for it, and L2
 * from that L1 copy. Then cp1 keeps each VM's memory copy on its own node and on the other: status lists all four
 * copies, and each partner copy came from the VM's node's agent over the agents' mutual TLS. Node n2 is lost (its agent,
 * its memory, vm2's QEMU; the node NotReady): the schedule's automatic recovery restores the whole VC from L0, vm1 from
 * its own node's copy, vm2 from the copy n1 held for it (its instance recreated on n1), and each guest goes on from the
 * cut hash for hash. Once n2's agent pod is gone, the checkpoint says which copies went with it, and keeps L0: every VM
 * is still held; no node lends room for a second copy (n3 lends nothing yet), and the checkpoint says so; once n3
 * lends, the next look (placement Both) copies each VM that n1 alone holds into n3's memory. Then n1 is lost too, with
 * both VMs: the second recovery restores them on n3 from those copies, hash for hash.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class OperatorPartnerLevel0Test {
    static final String NS = "hpc";
    static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path work;

    @Test
    void aLostNodesVmIsRestoredFromItsPartnerCopyAndTheGuestsGoOnExactly() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        Map<String, VmSpec> machines = new LinkedHashMap<>();
        machines.put("vm1", TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 150"));
        machines.put("vm2", TestVms.dirtier("vm2", 256, "-m 24 -d 6 -i 150"));
        AtomicReference<FakeVirtController> controller = new AtomicReference<>();
        try (MockKubernetes kube = new MockKubernetes();
             AgentCertificates tls = new AgentCertificates(kube.client, MockKubernetes.AGENT_NAMESPACE, "mekha-agent",
                     Map.of("app.kubernetes.io/name", "mekha-agent"), Clock.systemUTC()).start();
             LauncherPods pods = new LauncherPods(work);
             KubeVirtNode n1 = KubeVirtRig.agentNode(work, kube, tls, KubeVirtRig.freePort(), "n1", q -> onNode(controller, q, "n1"));
             KubeVirtNode n2 = KubeVirtRig.agentNode(work, kube, tls, KubeVirtRig.freePort(), "n2", q -> onNode(controller, q, "n2"));
             KubeVirtNode n3 = KubeVirtRig.agentNode(work, kube, tls, KubeVirtRig.freePort(), "n3", q -> onNode(controller, q, "n3"))) {
            KubernetesClient client = kube.client;
            kube.namespace(NS);
            KubeVirtRig.nodeReady(client, "n1", true);
            KubeVirtRig.nodeReady(client, "n2", true);
            KubeVirtRig.nodeReady(client, "n3", true);
            n3.agent.lendingAtMost(0); // n3 runs no VM and lends nothing until a node is lost
            kube.vm(NS, "vm1", Map.of("app", "hpc"), List.of(), "n1");
            kube.vm(NS, "vm2", Map.of("app", "hpc"), List.of(), "n2");
            try (FakeVirtController kubevirt = new FakeVirtController(client, NS, pods, machines, "n1");
                 TestOperator operator = new TestOperator(client, Clock.systemUTC(), tls)) {
                controller.set(kubevirt);
                for (String vm : machines.keySet()) {
                    KubeVirtRig.awaitUntil(() -> KubeVirtRig.running(kubevirt, vm), "VM " + vm + " started by KubeVirt");
                    LauncherPods.awaitRound(kubevirt.launcher(vm).console(), 5);
                }
                assertThat(kubevirt.nodeOf("vm2")).isEqualTo("n2");
                client.resource(KubeVirtRig.recoverySchedule(NS, checkpoint("unused", Level0Placement.Both).getSpec())).create();

                // the partners lend too little for a copy of a 256 MiB VM: refused before the cut, nothing paused
                n1.agent.lendingAtMost(200);
                n2.agent.lendingAtMost(200);
                client.resource(checkpoint("cp0", Level0Placement.Both)).create();
                VirtualClusterCheckpoint cp0 = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp0",
                        c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
                assertThat(cp0.getStatus().phase).isEqualTo(Phase.Failed);
                var refused = Conditions.get(cp0.getStatus().conditions, Conditions.READY);
                assertThat(refused.getReason()).isEqualTo(Reasons.PARTNER_NO_ROOM);
                assertThat(refused.getMessage()).contains("does not fit").contains("200 MiB").contains("nothing was paused");
                for (KubeVirtNode node : List.of(n1, n2)) {
                    assertThatThrownBy(() -> node.agent.status(cp0.getStatus().checkpointId)).as("no session on %s", node.agent.node())
                            .isInstanceOf(AgentException.class).hasMessageContaining("no checkpoint");
                    assertThat(node.agent.partners(cp0.getStatus().checkpointId)).as("no room kept on %s", node.agent.node()).isEmpty();
                }
                assertThat(KubeVirtRig.events(client, NS, "vm1")).doesNotContain(Reasons.MEKHA_CHECKPOINT);
                n1.agent.lendingAtMost(Long.MAX_VALUE);
                n2.agent.lendingAtMost(Long.MAX_VALUE);

                // n2's disk fails (its level-1 directory is not a directory): cp2's flush writes vm2 from the copy n1 holds
                Path n2Level1 = work.resolve("n2").resolve("level1");
                deleteTree(n2Level1);
                Files.writeString(n2Level1, "not a directory");
                VirtualClusterCheckpoint cp2 = checkpoint("cp2", Level0Placement.Both);
                cp2.getSpec().storage.levels = List.of(LevelName.L1, LevelName.L2);
                client.resource(OperatorCheckpointTest.location("shared", Files.createDirectories(work.resolve("level2")).toString(), List.of(NS)))
                        .create();
                cp2.getSpec().storage.level2 = OperatorCheckpointTest.level2Location("shared");
                cp2.getSpec().storage.releaseMemoryWhenDurable = true;
                client.resource(cp2).create();
                cp2 = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp2", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
                assertThat(cp2.getStatus().phase).as(String.valueOf(cp2.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                assertThat(cp2.getStatus().levels).containsExactly(LevelName.L1, LevelName.L2);
                assertThat(cp2.getStatus().level0).as("memory released once L1 held it").isNull();
                var redone = client.v1().events().inNamespace(NS).list().getItems().stream()
                        .filter(e -> Reasons.WRITTEN_FROM_PARTNER.equals(e.getReason()) && "cp2".equals(e.getInvolvedObject().getName())).toList();
                assertThat(redone).singleElement().satisfies(e -> assertThat(e.getMessage()).contains("vm2").contains("node n1")
                        .contains("n2: ").contains("L1"));
                String id2 = cp2.getStatus().checkpointId;
                try (Stream<Path> files = Files.walk(work.resolve("n1").resolve("level1"))) {
                    assertThat(files.filter(f -> f.toString().contains(id2) && Files.isRegularFile(f)).map(f -> f.getFileName().toString()).toList())
                            .as("n1's disk holds both VMs of cp2").anyMatch(f -> f.contains("vm1")).anyMatch(f -> f.contains("vm2"));
                }
                try (Stream<Path> files = Files.walk(work.resolve("level2"))) {
                    // L2 after L1: vm2's shared copy is made from the L1 copy n1 wrote
                    assertThat(files.filter(f -> f.toString().contains(id2) && Files.isRegularFile(f)).map(f -> f.getFileName().toString()).toList())
                            .as("the shared level holds both VMs of cp2").anyMatch(f -> f.contains("vm1")).anyMatch(f -> f.contains("vm2"));
                }
                // the L1 manifest puts vm2 on n1, where a restore from L1 loads it, and both files read back whole there
                var manifest = n1.agent.readManifest(new io.mekha.agent.api.AgentDtos.StoredRequest(io.mekha.storage.StorageLevel.L1, null, NS, id2));
                assertThat(manifest.vms()).extracting(v -> v.name(), v -> v.node()).containsExactlyInAnyOrder(
                        org.assertj.core.groups.Tuple.tuple(NS + "_vm1", "n1"), org.assertj.core.groups.Tuple.tuple(NS + "_vm2", "n1"));
                assertThat(n1.agent.verifyStored(new io.mekha.agent.api.AgentDtos.StoredVmsRequest(io.mekha.storage.StorageLevel.L1, null, manifest,
                        List.of(NS + "_vm1", NS + "_vm2")))).allSatisfy(v -> assertThat(v.ok()).as(v.error()).isTrue()).hasSize(2);
                for (KubeVirtNode node : List.of(n1, n2)) {
                    assertThat(node.agent.partners(id2)).as("partner copies let go on %s", node.agent.node()).isEmpty();
                }
                client.resource(cp2).delete();
                deleteTree(n2Level1);
                Files.createDirectories(n2Level1);

                // cp1, the schedule's: each VM's memory copy on its own node and on the other
                VirtualClusterCheckpoint cp1 = checkpoint("cp1", Level0Placement.Both);
                cp1.getMetadata().setLabels(Map.of(MekhaApi.SCHEDULE_LABEL, "vc"));
                client.resource(cp1).create();
                cp1 = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp1", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
                assertThat(cp1.getStatus().phase).as(String.valueOf(cp1.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                assertThat(cp1.getStatus().levels).containsExactly(LevelName.L0);
                assertThat(cp1.getStatus().level0.placement).isEqualTo(Level0Placement.Both);
                assertThat(copies(cp1)).containsExactlyInAnyOrder("vm1@n1 Own", "vm1@n2 Partner", "vm2@n2 Own", "vm2@n1 Partner");
                assertThat(KubeVirtRig.events(client, NS, "cp1")).contains(Reasons.PARTNER_ROOM_KEPT, Reasons.PARTNER_COPIES_HELD);
                String id = cp1.getStatus().checkpointId;
                client.v1().events().inNamespace(NS).list().getItems().stream()
                        .filter(e -> Reasons.PARTNER_COPIES_HELD.equals(e.getReason()) && "cp1".equals(e.getInvolvedObject().getName()))
                        .forEach(e -> System.out.println("cp1: " + e.getMessage()));
                var held = n1.agent.partners(id);
                assertThat(held).singleElement().satisfies(c -> {
                    assertThat(c.vm()).isEqualTo(NS + "_vm2");
                    assertThat(c.sourceNode()).isEqualTo("n2");
                    assertThat(c.kind()).isEqualTo(PartnerKind.STREAM);
                    assertThat(c.state()).isEqualTo(PartnerCopyState.HELD);
                    assertThat(c.bytes()).isGreaterThan(1 << 20);
                    System.out.printf("n1 holds vm2's stream of cp1: %d MiB%n", c.bytes() >> 20);
                });
                Map<String, Long> cutRound = new LinkedHashMap<>();
                for (String vm : machines.keySet()) {
                    cutRound.put(vm, DirtierLog.lastRoundReached(Files.readString(kubevirt.launcher(vm).console())));
                }
                KubeVirtRig.awaitSchedule(kube, NS, s -> "Watching".equals(s.getStatus().recovery.state) && "cp1".equals(s.getStatus().recovery.checkpoint),
                        "the schedule watches the VC of cp1");

                // node n2 is lost: its agent, the memory it held (its tmpfs), and vm2's QEMU; the node goes NotReady
                LauncherPods.Launcher vm2Before = kubevirt.launcher("vm2");
                n2.close();
                deleteTree(work.resolve("n2").resolve("level0"));
                LauncherPods.crash(vm2Before);
                Instant lost = Instant.now();
                KubeVirtRig.nodeReady(client, "n2", false);

                VirtualClusterRestore recovery = awaitRecoveryRestore(client);
                recovery = kube.awaitStatus(VirtualClusterRestore.class, NS, recovery.getMetadata().getName(),
                        r -> r.getStatus().phase != null && r.getStatus().phase.terminal(), RUN);
                assertThat(recovery.getStatus().phase).as(String.valueOf(recovery.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                assertThat(recovery.getStatus().restoredFrom).as("from memory, though vm2's node is gone").isEqualTo(LevelName.L0);
                assertThat(recovery.getStatus().vms).extracting(v -> v.name, v -> v.node)
                        .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple("vm1", "n1"), org.assertj.core.groups.Tuple.tuple("vm2", "n1"));
                assertThat(kubevirt.nodeOf("vm2")).as("vm2's instance recreated on its partner node").isEqualTo("n1");
                var record = KubeVirtRig.awaitSchedule(kube, NS, s -> s.getStatus().recovery.history.size() == 1
                        && s.getStatus().recovery.history.get(0).phase == Phase.Succeeded, "the recovery recorded").getStatus().recovery.history.get(0);
                assertThat(record.failure).contains("node n2").contains("NotReady");
                assertThat(Instant.parse(record.detectedAt)).as("seen after the grace period").isAfterOrEqualTo(lost.plusSeconds(2));
                assertThat(record.restoredFrom).isEqualTo(LevelName.L0);
                System.out.printf("node n2 lost: seen %d ms after (grace 2 s), every VM running %d ms after (restore %s), work lost %s%n",
                        Duration.between(lost, Instant.parse(record.detectedAt)).toMillis(),
                        Duration.between(lost, Instant.parse(record.runningAgainAt)).toMillis(), record.restoreTook, record.lostWork);
                // the feeds from memory are followed like loads from L1/L2: n1 fed both streams, its own and n2's
                assertThat(n1.agent.progress(id)).filteredOn(p -> p.purpose().equals("load from L0"))
                        .extracting(p -> p.vm(), p -> p.error(), p -> p.bytesDone() == p.bytesTotal() && p.bytesTotal() > (1 << 20))
                        .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple(NS + "_vm1", null, true),
                                org.assertj.core.groups.Tuple.tuple(NS + "_vm2", null, true));
                for (String vm : machines.keySet()) {
                    KubeVirtRig.assertExact(kubevirt, vm, cutRound.get(vm));
                }

                // n2's agent pod goes with its node: the checkpoint says which copies went and keeps L0; no other node lends room
                // yet, so each VM stays in n1's memory alone, and the checkpoint says so
                client.pods().inNamespace(MockKubernetes.AGENT_NAMESPACE).withName("mekha-agent-n2").delete();
                cp1 = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp1", c -> c.getStatus().level0.copies.size() == 2, RUN);
                assertThat(copies(cp1)).containsExactlyInAnyOrder("vm1@n1 Own", "vm2@n1 Partner");
                KubeVirtRig.awaitUntil(() -> KubeVirtRig.events(client, NS, "cp1").contains(Reasons.LEVEL0_COPY_NOT_REMADE), "Level0CopyNotRemade");
                client.v1().events().inNamespace(NS).list().getItems().stream()
                        .filter(e -> Reasons.LEVEL0_COPY_NOT_REMADE.equals(e.getReason())).forEach(e -> System.out.println("cp1: " + e.getMessage()));
                // once n3 lends room, the next look (placement Both) copies each VM that n1 alone holds into n3's memory,
                // handed on from n1
                n3.agent.lendingAtMost(Long.MAX_VALUE);
                cp1 = kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp1", c -> c.getStatus().level0.copies.size() == 4, RUN);
                assertThat(copies(cp1)).containsExactlyInAnyOrder("vm1@n1 Own", "vm2@n1 Partner", "vm1@n3 Partner", "vm2@n3 Partner");
                assertThat(cp1.getStatus().levels).containsExactly(LevelName.L0);
                assertThat(cp1.getStatus().readyToUse).isTrue();
                assertThat(KubeVirtRig.events(client, NS, "cp1")).contains(Reasons.LEVEL0_COPY_LOST, Reasons.LEVEL0_COPY_REMADE)
                        .doesNotContain(Reasons.LEVEL0_LOST);
                assertThat(n3.agent.partners(id)).extracting(c -> c.vm(), c -> c.sourceNode(), c -> c.state())
                        .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple(NS + "_vm1", "n1", PartnerCopyState.HELD),
                                org.assertj.core.groups.Tuple.tuple(NS + "_vm2", "n1", PartnerCopyState.HELD));

                // so the loss of n1 too, which now runs both VMs, is survived: the second recovery restores both on n3
                List<LauncherPods.Launcher> onN1 = machines.keySet().stream().map(kubevirt::launcher).toList();
                n1.close();
                deleteTree(work.resolve("n1").resolve("level0"));
                for (LauncherPods.Launcher launcher : onN1) {
                    LauncherPods.crash(launcher);
                }
                Instant lostN1 = Instant.now();
                KubeVirtRig.nodeReady(client, "n1", false);
                var second = KubeVirtRig.awaitSchedule(kube, NS, s -> s.getStatus().recovery.history.size() == 2
                        && s.getStatus().recovery.history.stream().allMatch(h -> h.phase == Phase.Succeeded), "the second recovery").getStatus().recovery
                        .history.stream().max(Comparator.comparing(h -> Instant.parse(h.detectedAt))).orElseThrow();
                assertThat(second.failure).contains("n1");
                assertThat(second.restoredFrom).isEqualTo(LevelName.L0);
                assertThat(kubevirt.nodeOf("vm1")).isEqualTo("n3");
                assertThat(kubevirt.nodeOf("vm2")).isEqualTo("n3");
                System.out.printf("node n1 lost as well (%s): every VM running on n3 %d ms after, from the copies n3 was handed%n",
                        second.failure, Duration.between(lostN1, Instant.parse(second.runningAgainAt)).toMillis());
                for (String vm : machines.keySet()) {
                    KubeVirtRig.assertExact(kubevirt, vm, cutRound.get(vm));
                }
                kubevirt.check();
            }
        }
    }

    private static boolean onNode(AtomicReference<FakeVirtController> controller, io.mekha.agent.kubevirt.LauncherQemu qemu, String node) {
        FakeVirtController kubevirt = controller.get();
        return kubevirt != null && kubevirt.onNode(qemu, node);
    }

    private static List<String> copies(VirtualClusterCheckpoint cp) {
        return cp.getStatus().level0.copies.stream().map((Level0Holder c) -> c.vm + "@" + c.node + " " + c.role).toList();
    }

    private static VirtualClusterCheckpoint checkpoint(String name, Level0Placement placement) {
        VirtualClusterCheckpoint cp = new VirtualClusterCheckpoint();
        cp.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).build());
        cp.setSpec(new VirtualClusterCheckpointSpec());
        cp.getSpec().vms = List.of("vm1", "vm2");
        cp.getSpec().failureDeadline = "10m";
        cp.getSpec().storage = new StorageSpec();
        cp.getSpec().storage.level0 = new Level0Spec();
        cp.getSpec().storage.level0.placement = placement;
        cp.setStatus(null);
        return cp;
    }

    private static VirtualClusterRestore awaitRecoveryRestore(KubernetesClient client) throws InterruptedException {
        KubeVirtRig.awaitUntil(() -> !client.resources(VirtualClusterRestore.class).inNamespace(NS).withLabel(MekhaApi.SCHEDULE_LABEL, "vc")
                .list().getItems().isEmpty(), "a recovery restore created by the operator");
        List<VirtualClusterRestore> all = client.resources(VirtualClusterRestore.class).inNamespace(NS).withLabel(MekhaApi.SCHEDULE_LABEL, "vc")
                .list().getItems();
        assertThat(all).hasSize(1);
        return all.get(0);
    }

    private static void deleteTree(Path dir) throws java.io.IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
