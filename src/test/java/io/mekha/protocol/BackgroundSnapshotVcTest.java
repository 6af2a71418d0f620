package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.model.TransferMode;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The coordinated background snapshot on a whole VC: the ring's three VMs over two agents stopped at Ts, each VM's
 * background snapshot started while it is stopped, all resumed at Tr once every one is armed, and their RAM as at the cut
 * streamed to level 0 while the ring runs on. The checkpoint restarts the VC from memory and from L1 with every step sum
 * equal to an uninterrupted run's.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class BackgroundSnapshotVcTest {
    private static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path work;

    @Test
    void theRingCheckpointedInBackgroundRestartsExactlyFromMemoryAndFromLevel1() throws Exception {
        try (TestCluster vc = new TestCluster(work, 200, 30);
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            StorageTarget shared = new StorageTarget.Filesystem(work.resolve("shared"));
            vc.bootAll();
            vc.awaitStep(15, RUN);
            // vm3's copy capped, so that its RAM is still streaming well after the others' (the checkpoint waits for it)
            CheckpointOptions options = CheckpointOptions.defaults().withMode(TransferMode.BACKGROUND_SNAPSHOT)
                    .withBandwidthLimits(Map.of("vm3", 8L << 20));
            List<String> steps = new java.util.concurrent.CopyOnWriteArrayList<>();
            CheckpointReport report = vc.coordinator.checkpoint("cp1", vc.vmNames(), options, step -> {
                steps.add(step);
                System.out.println(step);
            });
            Map<String, Long> reached = vc.reachedSteps();
            report.vms().forEach(v -> System.out.println(v.vm() + " stopped " + v.stoppedAt() + " captured " + v.capturedAt()
                    + " resumed " + v.resumedAt() + " " + v.figures()));
            System.out.printf("suspend skew %s, resume skew %s, time to checkpoint %s%n", report.suspendSkew(), report.resumeSkew(),
                    report.timeToCheckpoint());

            assertThat(report.barrierHeld()).isTrue();
            Instant firstResume = report.vms().stream().map(VmCheckpointReport::resumedAt).min(Instant::compareTo).orElseThrow();
            for (VmCheckpointReport vm : report.vms()) {
                assertThat(vm.figures().mode()).isEqualTo(TransferMode.BACKGROUND_SNAPSHOT);
                assertThat(vm.stoppedAt()).as("%s stopped by Mekha before any VM resumed", vm.vm()).isBefore(firstResume);
                assertThat(vm.capturedAt()).as("%s armed (devices saved, RAM write-protected) before any VM resumed", vm.vm())
                        .isBefore(firstResume);
                assertThat(vm.figures().bytesTransferred()).as("%s: its RAM reached level 0", vm.vm()).isPositive();
                assertThat(vm.figures().mekhaPaused()).as("%s was paused by Mekha (stop at Ts, cont at Tr)", vm.vm()).isNotNull();
            }
            assertThat(steps).as("the coordinator said the VC runs while the copies stream on")
                    .anyMatch(s -> s.contains("every VM runs again") && s.contains("streams on to level 0"));

            FlushReport flush = storage.flush(CheckpointStorage.draft("ring", report, options, Instant.now()), sizes(report),
                    FlushPlan.level1(), System.out::println);
            assertThat(flush.durable()).as(flush.failures().toString()).isTrue();
            assertThat(flush.published()).containsKey(StorageLevel.L1);

            // the VC runs on past the cut, then every VM crashes: from the shadows in memory first
            vc.awaitStep(Math.min(vc.minStep() + 15, vc.steps()), RUN);
            killEveryVm(vc);
            CheckpointStorage.RestoreReport fromMemory = storage.restore("ring", "cp1", null, shared, null, null, System.out::println);
            assertThat(fromMemory.level()).isEqualTo(StorageLevel.L0);
            vc.assertFinishesExactly(reached, RUN);

            // and again from the node-local files, the memory copy used up
            killEveryVm(vc);
            CheckpointStorage.RestoreReport fromDisk = storage.restore("ring", "cp1", null, shared, null, null, System.out::println);
            assertThat(fromDisk.level()).isEqualTo(StorageLevel.L1);
            vc.assertFinishesExactly(reached, RUN);
        }
    }

    private static Map<String, Long> sizes(CheckpointReport report) {
        Map<String, Long> sizes = new HashMap<>();
        report.vms().forEach(v -> sizes.put(v.vm(), v.figures().bytesTransferred()));
        return sizes;
    }

    private static void killEveryVm(TestCluster vc) throws Exception {
        for (String vm : vc.vmNames()) {
            ProcessHandle.of(vc.info(vm).pid()).ifPresent(p -> {
                p.destroyForcibly();
                p.onExit().join();
            });
        }
    }
}
