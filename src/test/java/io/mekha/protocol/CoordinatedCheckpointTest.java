package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.nio.file.Files;
import java.nio.file.Path;
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
 * A 3-VM virtual cluster over two agents (one in its own process) running a TCP ring workload,
 * checkpointed by the coordinator at one consistent cut on real QEMU.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class CoordinatedCheckpointTest {
    private static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path work;

    @Test
    void checkpointWithOneSlowVmKeepsTheCutConsistentAndTheRingContinuesOverTheSameConnections() throws Exception {
        try (TestCluster vc = new TestCluster(work, 250, 30)) {
            vc.bootAll();
            vc.awaitStep(20, RUN);

            // vm3's transfer is capped to 12 MiB/s: much slower than the others
            CheckpointOptions options = CheckpointOptions.defaults().withBandwidthLimits(Map.of("vm3", 12L << 20));
            CheckpointReport report = vc.coordinator.checkpoint("cp1", vc.vmNames(), options, System.out::println);

            report.vms().forEach(v -> System.out.println(v.vm() + " stopped " + v.stoppedAt() + " captured " + v.capturedAt()
                    + " resumed " + v.resumedAt() + " " + v.figures()));
            assertThat(report.vms()).hasSize(3);
            Instant firstResume = report.vms().stream().map(VmCheckpointReport::resumedAt).min(Instant::compareTo).orElseThrow();
            for (VmCheckpointReport vm : report.vms()) {
                assertThat(vm.stoppedAt()).as("%s stopped before any VM resumed", vm.vm()).isBefore(firstResume);
                assertThat(vm.capturedAt()).as("%s captured before any VM resumed", vm.vm()).isBefore(firstResume);
                assertThat(vm.figures().bytesTransferred()).isPositive();
            }
            assertThat(report.barrierHeld()).isTrue();
            VmCheckpointReport slow = report.vms().stream().filter(v -> v.vm().equals("vm3")).findFirst().orElseThrow();
            assertThat(slow.capturedAt()).as("the capped VM was captured too before any VM resumed").isBefore(firstResume);
            assertThat(report.resumeAt()).isAfter(report.suspendAt());
            System.out.printf("suspend skew %s, resume skew %s, time to checkpoint %s%n",
                    report.suspendSkew(), report.resumeSkew(), report.timeToCheckpoint());

            Map<String, List<String>> consoles = vc.awaitRingDone(RUN);
            consoles.forEach((vm, lines) -> {
                assertThat(lines).as("%s: no connection broke", vm).noneMatch(l -> l.contains("RING error"));
                assertThat(io.mekha.local.RingReference.printed(lines, TestCluster.node(vm))).as("%s printed every step", vm).hasSize(vc.steps());
            });
            assertThat(vc.mismatches(consoles)).as("every step's sum equals an uninterrupted run's").isEmpty();
            vc.coordinator.discard("cp1");
        }
    }

    @Test
    void afterEveryVmCrashesTheVcRestartsFromTheCheckpointAndFinishesWithTheSumsOfAnUninterruptedRun() throws Exception {
        try (TestCluster vc = new TestCluster(work, 200, 30)) {
            vc.bootAll();
            vc.awaitStep(15, RUN);
            CheckpointReport report = vc.coordinator.checkpoint("cp1", vc.vmNames(), CheckpointOptions.defaults(), System.out::println);
            assertThat(report.barrierHeld()).isTrue();
            long stepAfterCheckpoint = vc.minStep();
            Map<String, Long> reached = new LinkedHashMap<>();
            for (String vm : vc.vmNames()) {
                reached.put(vm, io.mekha.local.RingReference.lastStepReached(String.join("\n", vc.console(vm))));
            }

            // the VC runs on past the cut, then every VM crashes
            vc.awaitStep(stepAfterCheckpoint + 20, RUN);
            for (String vm : vc.vmNames()) {
                ProcessHandle.of(vc.info(vm).pid()).ifPresent(p -> {
                    p.destroyForcibly();
                    p.onExit().join();
                });
            }

            RestartReport restart = vc.coordinator.restart("cp1", System.out::println);
            assertThat(restart.resumedAt()).hasSize(3);
            System.out.printf("restart resume skew %s, time to restart %s%n", restart.resumeSkew(), restart.timeToRestart());

            Map<String, List<String>> consoles = vc.awaitRingDone(RUN);
            consoles.forEach((vm, lines) -> {
                var printed = io.mekha.local.RingReference.printed(lines, TestCluster.node(vm));
                assertThat(printed.firstKey()).as("%s resumed from the cut, not later", vm).isLessThanOrEqualTo(reached.get(vm) + 1);
                assertThat(printed.lastKey()).as("%s finished the run", vm).isEqualTo(vc.steps());
                assertThat(lines).as("%s: no connection broke", vm).noneMatch(l -> l.contains("RING error"));
            });
            assertThat(vc.mismatches(consoles)).as("every step after the restart equals an uninterrupted run's").isEmpty();
        }
    }

}
