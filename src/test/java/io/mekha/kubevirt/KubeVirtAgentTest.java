package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.kubevirt.KubeVirtVmRuntime;
import io.mekha.agent.runtime.RuntimeConfig;
import io.mekha.agent.runtime.VmSpec;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.local.DirtierLog;
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
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
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
        BearerToken token = BearerToken.random();
        try (LauncherPods pods = new LauncherPods(work);
             AgentService agent = new AgentService("n1", new KubeVirtVmRuntime(RuntimeConfig.defaults(Files.createDirectories(work.resolve("agent"))),
                     Path.of("/proc"), level0, Duration.ofSeconds(60)), new RendezvousClock(Clock.systemUTC()));
             AgentHttpServer server = new AgentHttpServer(agent, token, new InetSocketAddress("127.0.0.1", 0)).start()) {
            AgentClient client = new AgentClient("n1", server.uri(), token.header(), Duration.ofSeconds(30));
            Coordinator coordinator = new Coordinator(List.of(client), Clock.systemUTC());
            CheckpointStorage storage = new CheckpointStorage(List.of(client), coordinator, Clock.systemUTC());

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
            coordinator.close();
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
    private static void assertContinuesExactly(Map<String, LauncherPods.Launcher> restored, Map<String, TreeMap<Long, String>> before,
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
