package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.local.DirtierLog;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.storage.StorageLevel;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's KubeVirt runtime against a tenant, over HTTP, on this machine's real process table, with QEMUs run as
 * virt-launcher runs them (each in its own mount namespace with its pod's emptyDirs and cgroup, with the hook's
 * monitor): a disk directory swapped for a link to the host, a QEMU that only says it is a VMI. The whole protocol with
 * libvirt in charge of QEMU (checkpoint, flush, restore from memory and from level 1, QEMU as uid 107, the watchdog) is
 * {@link LibvirtKubeVirtTest}.
 */
@Tag("qemu")
@Tag("security")
@ExtendWith(NoQemuLeftBehind.class)
class KubeVirtAgentTest {
    static final String NS = "hpc";
    static final String RESTORE = "\"mekha.io/restore-from\": \"hpc.kv1\"";

    @TempDir
    Path work;

    /**
     * Issue 14, item 2: the tenant swaps its pod's disk directory for a link to a directory of the host after the agent
     * found the disk (the agent attached to the VMI; the checkpoint comes later). Before, the copy at the cut walked the
     * path again and followed the link: the host's file went into the checkpoint, to be restored into the tenant's VM.
     * Now the disk was opened inside the pod when the agent attached, and the copy reads that very file.
     */
    @Test
    void aDiskDirectorySwappedForALinkToTheHostAfterTheAgentFoundItIsNeverWhatTheCutCopies() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        Path base = qcow2(work.resolve("containerdisk.qcow2"), "16M");
        // a host file the tenant must never get; a qcow2 image, since QEMU itself reopens its disk by name at the resume
        Path decoys = Files.createDirectories(work.resolve("host-files/rootdisk"));
        Path decoy = qcow2(decoys.resolve("disk.qcow2"), "8M");
        byte[] decoyBytes = Files.readAllBytes(decoy);
        VmSpec spec = TestVms.dirtier("vm1", 256, "-m 8 -d 1 -i 200");
        try (LauncherPods pods = new LauncherPods(work); KubeVirtNode node = new KubeVirtNode(work)) {
            pods.nameTo(node.client); // as the operator names each VMI's launcher pod before it acts
            pods.launch("vm1-a", NS, spec, "", base);
            awaitVm(node.client, "hpc_vm1");
            Path ephemeral = work.resolve("pods/vm1-a/volumes/kubernetes.io~empty-dir/ephemeral-disks");
            Files.move(ephemeral.resolve("disk-data"), ephemeral.resolve("disk-data.real"));
            Files.createSymbolicLink(ephemeral.resolve("disk-data"), decoys.getParent().toAbsolutePath());

            node.coordinator.checkpoint("ks1", List.of("hpc_vm1"), CheckpointOptions.defaults(), System.out::println);

            List<Path> copies;
            try (var held = Files.list(work.resolve("level0"))) {
                copies = held.filter(p -> p.getFileName().toString().endsWith(".disk.qcow2")).toList();
            }
            assertThat(copies).hasSize(1);
            byte[] copy = Files.readAllBytes(copies.get(0));
            assertThat(copy).as("the copy at the cut is not the host's file").isNotEqualTo(decoyBytes);
            assertThat(new String(copy, java.nio.charset.StandardCharsets.ISO_8859_1)).as("it is the VM's overlay, over its base")
                    .contains(base.toString());
            node.coordinator.discard("ks1");
        }
    }

    /**
     * Issue 14, item 1: a tenant's process can call itself {@code -name guest=hpc_vm1} and open a socket where Mekha's
     * monitor is; before, the agent took any such QEMU for VMI hpc/vm1, checkpointed it and, on a restore, fed it vm1's
     * memory and disk. Now only the QEMU in the launcher pod the operator named (its cgroup) is that VM: the impostor is
     * refused before anything is paused, and when both wait for a restore's state, only the real pod gets it.
     */
    @Test
    void aQemuThatOnlySaysItIsAVmiIsNeverCheckpointedNorFedThatVmisState() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces and cgroups for the pods need root");
        VmSpec spec = TestVms.dirtier("vm1", 256, "-m 8 -d 1 -i 200");
        try (LauncherPods pods = new LauncherPods(work); KubeVirtNode node = new KubeVirtNode(work)) {
            pods.nameTo(node.client);
            LauncherPods.Launcher impostor = pods.impostor("evil-a", NS, spec, "");
            awaitVm(node.client, "hpc_vm1");
            assertThatThrownBy(() -> node.coordinator.checkpoint("ki1", List.of("hpc_vm1"), CheckpointOptions.defaults(), System.out::println))
                    .hasMessageContaining("no launcher pod is known for VMI hpc/vm1").hasMessageContaining("nothing was paused");
            assertThat(node.client.vm("hpc_vm1").state()).as("the impostor was never paused").isEqualTo("running");

            // the real VMI's pod: with two QEMUs claiming the name, the agent drives the one in the named pod
            LauncherPods.Launcher real = pods.launch("vm1-a", NS, spec, "");
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (node.client.vms().stream().noneMatch(v -> v.name().equals("hpc_vm1") && v.pid() == real.process().pid())) {
                assertThat(System.nanoTime()).as("the agent drives the real pod's QEMU").isLessThan(deadline);
                Thread.sleep(100);
            }
            LauncherPods.awaitRound(real.console(), 3);
            node.coordinator.checkpoint("ki2", List.of("hpc_vm1"), CheckpointOptions.defaults(), System.out::println);
            long cut = lastRound(real);
            LauncherPods.crash(real);
            // the real pod is gone, its identity still named: the impostor is now the only QEMU that says it is hpc/vm1
            deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (node.client.vms().stream().noneMatch(v -> v.name().equals("hpc_vm1") && v.pid() == impostor.process().pid())) {
                assertThat(System.nanoTime()).as("the agent sees only the impostor").isLessThan(deadline);
                Thread.sleep(100);
            }
            assertThatThrownBy(() -> node.coordinator.checkpoint("ki3", List.of("hpc_vm1"), CheckpointOptions.defaults(), System.out::println))
                    .hasMessageContaining("QEMU pid " + impostor.process().pid() + " says it is VMI hpc/vm1 but does not run in its launcher pod")
                    .hasMessageContaining("nothing was paused");
            LauncherPods.crash(impostor);

            // a restore: an impostor waits for incoming state first, then the restored VMI's pod
            LauncherPods.Launcher waiting = pods.impostor("evil-b", NS, spec, RESTORE);
            LauncherPods.Launcher restored = pods.launch("vm1-b", NS, spec, RESTORE);
            assertThat(node.storage.restore("hpc", "ki2", null, null, null, null, System.out::println).level()).isEqualTo(StorageLevel.L0);
            LauncherPods.awaitRound(restored.console(), cut + 3);
            assertThat(node.client.vm("hpc_vm1").pid()).isEqualTo(restored.process().pid());
            assertThat(Files.exists(waiting.console()) ? DirtierLog.lastRound(Files.readAllLines(waiting.console())) : -1)
                    .as("the impostor never ran vm1's guest").isLessThan(1);
            assertThat(waiting.process().isAlive()).as("and still waits, fed nothing").isTrue();
            node.coordinator.discard("ki2");
        }
    }

    private static void awaitVm(AgentClient client, String vm) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (client.vms().stream().noneMatch(v -> v.name().equals(vm) && v.state().equals("running"))) {
            assertThat(System.nanoTime()).as("VM %s found", vm).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    /** A fresh, empty qcow2 image of {@code size} at {@code path}. */
    private Path qcow2(Path path, String size) throws Exception {
        Process img = new ProcessBuilder(RuntimeConfig.defaults(work).qemuImg(), "create", "-q", "-f", "qcow2", path.toString(), size)
                .redirectErrorStream(true).start();
        assertThat(img.waitFor()).as(new String(img.getInputStream().readAllBytes())).isZero();
        return path;
    }

    private static long lastRound(LauncherPods.Launcher l) {
        try {
            return DirtierLog.lastRoundReached(Files.readString(l.console()));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Each restored guest goes on from its cut: the rounds it repeats hash as they did before the crash. */
    static void assertContinuesExactly(Map<String, LauncherPods.Launcher> restored, Map<String, TreeMap<Long, String>> before,
                                       Map<String, Long> cutRound) throws Exception {
        Map<String, Path> consoles = new java.util.HashMap<>();
        restored.forEach((vm, l) -> consoles.put(vm, l.console()));
        assertConsolesContinueExactly(consoles, before, cutRound);
    }

    /** As {@link #assertContinuesExactly}, for the restored guests' consoles by VM. */
    static void assertConsolesContinueExactly(Map<String, Path> restored, Map<String, TreeMap<Long, String>> before,
                                              Map<String, Long> cutRound) throws Exception {
        for (var e : restored.entrySet()) {
            TreeMap<Long, String> source = before.get(e.getKey());
            LauncherPods.awaitRound(e.getValue(), source.lastKey() + 2);
            TreeMap<Long, String> after = DirtierLog.parse(Files.readAllLines(e.getValue()));
            assertThat(after.firstKey()).as("%s goes on from the cut", e.getKey()).isLessThanOrEqualTo(cutRound.get(e.getKey()) + 1);
            TreeMap<Long, String[]> both = DirtierLog.overlap(source, after);
            assertThat(both).as("%s: rounds run both before the crash and after the restart", e.getKey()).hasSizeGreaterThanOrEqualTo(3);
            both.forEach((round, hashes) -> assertThat(hashes[1]).as("%s: round %d after the restart", e.getKey(), round).isEqualTo(hashes[0]));
        }
    }

}
