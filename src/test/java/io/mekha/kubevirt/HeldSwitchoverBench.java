package io.mekha.kubevirt;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.model.VmSpec;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.VmCheckpointReport;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * What holding the switchover costs and saves on KubeVirt's held streams: a VC of a nearly idle VM
 * and a busy one whose live stage runs to its time bound, checkpointed with MTD; prints, per VM, the
 * live stages QEMU finished by itself (restarted), the pause, and the CPU time its QEMU used during
 * the checkpoint. Not part of the test run (tag {@code bench}); compare the agent's default (hold) with
 * {@code MEKHA_HOLD_SWITCHOVER=0}:
 * <pre>
 *   mvn test -Dgroups=bench -DexcludedGroups=e2e -Dtest=HeldSwitchoverBench
 *   MEKHA_HOLD_SWITCHOVER=0 mvn test -Dgroups=bench -DexcludedGroups=e2e -Dtest=HeldSwitchoverBench
 * </pre>
 * Figures in target/surefire-reports/io.mekha.kubevirt.HeldSwitchoverBench-output.txt.
 */
@Tag("bench")
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class HeldSwitchoverBench {
    @TempDir
    Path work;

    @Test
    void heldSwitchoverAgainstQemuFinishingLiveStagesByItself() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        VmSpec idle = TestVms.dirtier("idle", 256, "-m 8 -d 1 -i 2000");
        VmSpec busy = TestVms.dirtier("busy", 256, "-m 96 -d 48 -i 20");
        try (LauncherPods pods = new LauncherPods(work); KubeVirtNode node = new KubeVirtNode(work)) {
            pods.nameTo(node.client);
            LauncherPods.Launcher idlePod = pods.launch("idle-a", "hpc", idle, "");
            LauncherPods.Launcher busyPod = pods.launch("busy-a", "hpc", busy, "");
            LauncherPods.awaitRound(idlePod.console(), 2);
            LauncherPods.awaitRound(busyPod.console(), 20);
            CheckpointOptions options = CheckpointOptions.defaults().withLiveBounds(Duration.ofSeconds(6), Duration.ofSeconds(8));
            long idleCpu = cpuTicks(idlePod.process().pid());
            long busyCpu = cpuTicks(busyPod.process().pid());
            long started = System.nanoTime();
            CheckpointReport report = node.coordinator.checkpoint("bench", List.of("hpc_idle", "hpc_busy"), options, step -> { });
            long took = (System.nanoTime() - started) / 1_000_000;
            idleCpu = cpuTicks(idlePod.process().pid()) - idleCpu;
            busyCpu = cpuTicks(busyPod.process().pid()) - busyCpu;
            String hold = System.getenv("MEKHA_HOLD_SWITCHOVER");
            System.out.printf("switchover held: %s; checkpoint took %d ms, suspend skew %.1f ms%n",
                    "0".equals(hold) ? "no (MEKHA_HOLD_SWITCHOVER=0)" : "yes", took, report.suspendSkew().toNanos() / 1e6);
            for (VmCheckpointReport vm : report.vms()) {
                VmCheckpointStatus status = node.client.status("bench").vms().stream().filter(v -> v.vm().equals(vm.vm())).findFirst().orElseThrow();
                long cpu = vm.vm().equals("hpc_idle") ? idleCpu : busyCpu;
                System.out.printf("%-9s restarted %d, live %5d ms, paused %4d ms, %4d MB sent, QEMU CPU during the checkpoint %5d ms%n",
                        vm.vm(), status.liveRestarts(), vm.figures().liveStage().toMillis(), vm.figures().mekhaPaused().toMillis(),
                        vm.figures().bytesTransferred() >> 20, cpu * 10);
            }
            node.coordinator.discard("bench");
        }
    }

    /** utime + stime of a process, in clock ticks (1/100 s on Linux). */
    private static long cpuTicks(long pid) throws Exception {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }
}
