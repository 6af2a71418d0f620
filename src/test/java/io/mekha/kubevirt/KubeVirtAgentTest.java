package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.local.DirtierLog;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.FlushPlan;
import io.mekha.protocol.FlushReport;
import io.mekha.protocol.VmCheckpointReport;
import io.mekha.storage.StorageLevel;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's KubeVirt runtime under the whole protocol, over HTTP, on this machine's real process
 * table: two VMIs' QEMUs run as virt-launcher runs them (each in its own mount namespace with its
 * pod's emptyDir, with the hook's monitor); the agent finds them through /proc, the coordinator
 * checkpoints them at one cut with MTD into streams the agent holds (level 0), flushes them to
 * level 1, and after both pods die, restarts the VC into new launcher QEMUs that the hook started
 * waiting for their state, once from memory and once from level 1. Each guest's work goes on from
 * the cut round for round.
 */
@Tag("qemu")
@Tag("security")
@ExtendWith(NoQemuLeftBehind.class)
class KubeVirtAgentTest {
    static final String NS = "hpc";
    static final List<String> VMS = List.of("hpc_vm1", "hpc_vm2");
    static final String RESTORE = "\"mekha.io/restore-from\": \"hpc.kv1\"";

    @TempDir
    Path work;

    @Test
    void aVcOfVmisIsCheckpointedHeldInMemoryFlushedAndRestartedIntoRestoredVmisExactly() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        Map<String, VmSpec> specs = new LinkedHashMap<>();
        specs.put("hpc_vm1", TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 200"));
        specs.put("hpc_vm2", TestVms.dirtier("vm2", 256, "-m 24 -d 6 -i 250"));
        Path level0 = work.resolve("level0");
        try (LauncherPods pods = new LauncherPods(work); KubeVirtNode node = new KubeVirtNode(work)) {
            pods.nameTo(node.client); // as the operator names each VMI's launcher pod before it acts
            AgentClient client = node.client;
            Coordinator coordinator = node.coordinator;
            CheckpointStorage storage = node.storage;

            Map<String, LauncherPods.Launcher> first = new HashMap<>();
            specs.forEach((vm, spec) -> first.put(vm, launch(pods, vm + "-a", spec, "")));
            awaitVms(client, "running");
            assertThat(client.vms()).allSatisfy(v -> assertThat(v.pid()).isEqualTo(first.get(v.name()).process().pid()));
            assertThatThrownBy(() -> client.startVm(specs.get("hpc_vm1"))).isInstanceOf(AgentCallException.class)
                    .hasMessageContaining("KubeVirt starts the VMs");
            assertThatThrownBy(() -> client.stopVm("hpc_vm1")).hasMessageContaining("stop it through KubeVirt");
            for (LauncherPods.Launcher l : first.values()) {
                LauncherPods.awaitRound(l.console(), 6);
            }

            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport report = coordinator.checkpoint("kv1", VMS, options, System.out::println);
            for (VmCheckpointReport vm : report.vms()) {
                System.out.printf("%s: paused %d ms, %d bytes, live %s%n", vm.vm(), vm.figures().mekhaPaused().toMillis(),
                        vm.figures().bytesTransferred(), vm.figures().liveEnd());
                assertThat(vm.figures().bytesTransferred()).isPositive();
                assertThat(vm.figures().mekhaPaused()).isNotNull();
            }
            // the agent withholds the switchover until the cut (QEMU 8.1+), so QEMU never finished a live stage by itself
            assertThat(client.status("kv1").vms()).allSatisfy(v -> assertThat(v.liveRestarts()).as("%s live stages started over", v.vm()).isZero());
            try (var held = Files.list(level0)) {
                assertThat(held.map(p -> p.getFileName().toString()).toList()).as("level 0: one stream per VM, in memory")
                        .hasSize(2).allMatch(n -> n.endsWith(".stream"));
            }
            assertThat(client.vms()).as("every VM runs again after the cut").allMatch(v -> v.state().equals("running"));
            Map<String, Long> cutRound = new HashMap<>();
            first.forEach((vm, l) -> cutRound.put(vm, lastRound(l)));

            FlushReport flush = storage.flush(CheckpointStorage.draft("hpc", report, options, Instant.now()), sizes(report),
                    FlushPlan.level1().withCompression("zstd"), System.out::println);
            assertThat(flush.failures()).isEmpty();
            assertThat(flush.published()).containsOnlyKeys(StorageLevel.L1);

            // both pods die well after the cut; KubeVirt recreates the VMIs with the restore annotation
            Map<String, TreeMap<Long, String>> before = new HashMap<>();
            for (var e : first.entrySet()) {
                LauncherPods.awaitRound(e.getValue().console(), cutRound.get(e.getKey()) + 6);
                LauncherPods.crash(e.getValue());
                before.put(e.getKey(), DirtierLog.parse(Files.readAllLines(e.getValue().console())));
            }
            Map<String, LauncherPods.Launcher> second = new HashMap<>();
            specs.forEach((vm, spec) -> second.put(vm, launch(pods, vm + "-b", spec, RESTORE)));
            CheckpointStorage.RestoreReport fromMemory = storage.restore("hpc", "kv1", null, null, null, null, System.out::println);
            assertThat(fromMemory.level()).isEqualTo(StorageLevel.L0);
            System.out.println("restart from memory: resume skew " + fromMemory.restart().resumeSkew().toMillis() + " ms");
            assertContinuesExactly(second, before, cutRound);

            // and again, from the node's disk (level 1)
            for (LauncherPods.Launcher l : second.values()) {
                LauncherPods.crash(l);
            }
            Map<String, LauncherPods.Launcher> third = new HashMap<>();
            specs.forEach((vm, spec) -> third.put(vm, launch(pods, vm + "-c", spec, RESTORE)));
            CheckpointStorage.RestoreReport fromDisk = storage.restore("hpc", "kv1", StorageLevel.L1, null, null, null, System.out::println);
            assertThat(fromDisk.level()).isEqualTo(StorageLevel.L1);
            assertContinuesExactly(third, before, cutRound);

            coordinator.discard("kv1");
            try (var held = Files.list(level0)) {
                assertThat(held.toList()).as("discarding the checkpoint frees its memory").isEmpty();
            }
        }
    }

    /**
     * A containerDisk's writable overlay lives only in the VMI's pod: the agent copies it at the cut, beside the stream,
     * and a restore puts it in place of the fresh overlay in the restored pod before QEMU loads the state. What the guest
     * wrote to its disk before the cut is there after a restart, from memory and from level 1; what it wrote after is not.
     */
    @Test
    void aContainerDiskOverlayIsCutWithTheVmAndPutBackInTheRestoredPod() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        Path base = qcow2(work.resolve("containerdisk.qcow2"), "16M");
        VmSpec spec = TestVms.dirtier("vm1", 256, "-m 8 -d 1 -i 200").withGuestAgent(true);
        try (LauncherPods pods = new LauncherPods(work); KubeVirtNode node = new KubeVirtNode(work)) {
            pods.nameTo(node.client); // as the operator names each VMI's launcher pod before it acts
            AgentClient client = node.client;
            Coordinator coordinator = node.coordinator;
            CheckpointStorage storage = node.storage;
            LauncherPods.Launcher first = pods.launch("vm1-a", NS, spec, "", base);
            awaitVm(client, "hpc_vm1");
            assertThat(client.vm("hpc_vm1").spec().disk()).as("the agent found the overlay in the pod")
                    .isEqualTo(Path.of(LauncherPods.OVERLAY_IN_POD));
            write(first, "BEFORE-CUT", 0);

            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport report = coordinator.checkpoint("kd1", List.of("hpc_vm1"), options, System.out::println);
            write(first, "AFTER-CUT", 8);
            FlushReport flush = storage.flush(CheckpointStorage.draft("hpc", report, options, Instant.now()), sizes(report),
                    FlushPlan.level1(), System.out::println);
            assertThat(flush.published().get(StorageLevel.L1).vm("hpc_vm1").orElseThrow().disk()).as("the overlay is stored").isNotNull();

            LauncherPods.crash(first);
            LauncherPods.Launcher second = pods.launch("vm1-b", NS, spec, RESTORE, base);
            assertThat(storage.restore("hpc", "kd1", null, null, null, null, System.out::println).level()).isEqualTo(StorageLevel.L0);
            assertThat(read(second, 0)).as("from memory: written before the cut").isEqualTo("BEFORE-CUT");
            assertThat(read(second, 8)).as("from memory: written after the cut").isEmpty();
            write(second, "AFTER-RESTART", 16);

            LauncherPods.crash(second);
            LauncherPods.Launcher third = pods.launch("vm1-c", NS, spec, RESTORE, base);
            assertThat(storage.restore("hpc", "kd1", StorageLevel.L1, null, null, null, System.out::println).level()).isEqualTo(StorageLevel.L1);
            assertThat(read(third, 0)).as("from L1").isEqualTo("BEFORE-CUT");
            assertThat(read(third, 8)).as("from L1: written after the cut").isEmpty();
            assertThat(read(third, 16)).as("from L1: written after the first restart").isEmpty();
            coordinator.discard("kd1");
        }
    }

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

    /**
     * KubeVirt's non-root virt-launcher runs QEMU as uid 107: the agent (root) hands the sockets it binds in the pod to
     * QEMU's user and reaches those QEMU makes, so a checkpoint and a restart work as with a root QEMU. And the agent
     * never leaves a VMI paused: with no resume from the coordinator after the cut, its watchdog lets the VM run again.
     */
    @Test
    void aVmiWhoseQemuRunsAsKubeVirtsNonRootUserIsCheckpointedRestartedAndNeverLeftPaused() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        // QEMU as uid 107 must reach the guest's kernel and the pods' files
        Files.setPosixFilePermissions(work, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        VmSpec guest = TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 200");
        Path kernel = Files.copy(guest.kernel(), work.resolve("vmlinuz"));
        Path initrd = Files.copy(guest.initrd(), work.resolve("initrd.img"));
        for (Path p : List.of(kernel, initrd)) {
            Files.setPosixFilePermissions(p, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        }
        VmSpec spec = VmSpec.named("vm1").boot(kernel, initrd).workload(guest.workload()).build();
        try (LauncherPods pods = new LauncherPods(work); KubeVirtNode node = new KubeVirtNode(work)) {
            pods.nameTo(node.client); // as the operator names each VMI's launcher pod before it acts
            AgentClient client = node.client;
            Coordinator coordinator = node.coordinator;
            LauncherPods.Launcher first = pods.launch("vm1-a", NS, spec, "", null, 107);
            awaitVm(client, "hpc_vm1");
            assertThat(Files.getAttribute(Path.of("/proc/" + first.process().pid()), "unix:uid")).as("QEMU runs as uid 107").isEqualTo(107);
            LauncherPods.awaitRound(first.console(), 5);
            coordinator.checkpoint("kn1", List.of("hpc_vm1"), CheckpointOptions.defaults(), System.out::println);
            long cutRound = lastRound(first);
            LauncherPods.awaitRound(first.console(), cutRound + 6);
            LauncherPods.crash(first);
            TreeMap<Long, String> before = DirtierLog.parse(Files.readAllLines(first.console()));

            LauncherPods.Launcher second = pods.launch("vm1-b", NS, spec, RESTORE, null, 107);
            coordinator.restart("kn1", System.out::println);
            assertContinuesExactly(Map.of("hpc_vm1", second), Map.of("hpc_vm1", before), Map.of("hpc_vm1", cutRound));

            // the coordinator goes silent after the cut: the agent's watchdog resumes the VM after the pause deadline
            client.prepare("kn2", new io.mekha.agent.api.AgentDtos.PrepareRequest(List.of("hpc_vm1"), "StopAndCopy", null, null,
                    Duration.ofSeconds(2), null, null));
            client.suspend("kn2", client.time().now().plusMillis(300));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            boolean sawPaused = false;
            while (true) {
                String state = client.vm("hpc_vm1").state();
                sawPaused |= !state.equals("running");
                var phase = client.status("kn2").vms().get(0).phase();
                if (sawPaused && state.equals("running") && phase == io.mekha.agent.api.VmPhase.ABORTED) {
                    break;
                }
                assertThat(System.nanoTime()).as("the watchdog resumed the VM (state %s, checkpoint %s)", state, phase).isLessThan(deadline);
                Thread.sleep(50);
            }
            assertThat(client.status("kn2").vms().get(0).error()).contains("no resume from the coordinator");
            long round = lastRound(second);
            LauncherPods.awaitRound(second.console(), round + 3); // and the guest works on
        }
    }

    private static void awaitVm(AgentClient client, String vm) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (client.vms().stream().noneMatch(v -> v.name().equals(vm) && v.state().equals("running"))) {
            assertThat(System.nanoTime()).as("VM %s found", vm).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    /** Writes {@code text} at 512-byte sector {@code sector} of the guest's disk, synced (through the guest agent in the pod). */
    /** A fresh, empty qcow2 image of {@code size} at {@code path}. */
    private Path qcow2(Path path, String size) throws Exception {
        Process img = new ProcessBuilder(RuntimeConfig.defaults(work).qemuImg(), "create", "-q", "-f", "qcow2", path.toString(), size)
                .redirectErrorStream(true).start();
        assertThat(img.waitFor()).as(new String(img.getInputStream().readAllBytes())).isZero();
        return path;
    }

    private static void write(LauncherPods.Launcher pod, String text, int sector) throws Exception {
        var r = guest(pod, "printf '%s' '" + text + "' | dd of=/dev/vda bs=512 seek=" + sector + " conv=fsync,notrunc 2>&1");
        assertThat(r.succeeded()).as("guest write: %s", r).isTrue();
    }

    private static String read(LauncherPods.Launcher pod, int sector) throws Exception {
        var r = guest(pod, "echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 skip=" + sector
                + " count=1 iflag=direct 2>/dev/null | tr -d '\\000'");
        assertThat(r.succeeded()).as("guest read: %s", r).isTrue();
        return r.stdout();
    }

    private static io.mekha.agent.api.AgentDtos.ExecResult guest(LauncherPods.Launcher pod, String script) throws Exception {
        Path qga = pod.console().resolveSibling("qga.sock");
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            try {
                return io.mekha.agent.qemu.GuestCommands.run(qga, List.of("/bin/sh", "-c", script), null, Duration.ofSeconds(30));
            } catch (io.mekha.qmp.QmpException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(200); // the guest agent is not up yet
            }
        }
    }

    private static LauncherPods.Launcher launch(LauncherPods pods, String pod, VmSpec spec, String annotations) {
        try {
            return pods.launch(pod, NS, spec, annotations);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static void awaitVms(AgentClient client, String state) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        List<VmInfo> seen = List.of();
        while (System.nanoTime() < deadline) {
            seen = client.vms();
            if (seen.stream().map(VmInfo::name).sorted().toList().equals(VMS) && seen.stream().allMatch(v -> v.state().equals(state))) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the agent did not find both VMIs " + state + ": " + seen);
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
        for (var e : restored.entrySet()) {
            TreeMap<Long, String> source = before.get(e.getKey());
            LauncherPods.awaitRound(e.getValue().console(), source.lastKey() + 2);
            TreeMap<Long, String> after = DirtierLog.parse(Files.readAllLines(e.getValue().console()));
            assertThat(after.firstKey()).as("%s goes on from the cut", e.getKey()).isLessThanOrEqualTo(cutRound.get(e.getKey()) + 1);
            TreeMap<Long, String[]> both = DirtierLog.overlap(source, after);
            assertThat(both).as("%s: rounds run both before the crash and after the restart", e.getKey()).hasSizeGreaterThanOrEqualTo(3);
            both.forEach((round, hashes) -> assertThat(hashes[1]).as("%s: round %d after the restart", e.getKey(), round).isEqualTo(hashes[0]));
        }
    }

    private static Map<String, Long> sizes(CheckpointReport report) {
        Map<String, Long> sizes = new HashMap<>();
        report.vms().forEach(v -> sizes.put(v.vm(), v.figures().bytesTransferred()));
        return sizes;
    }
}
