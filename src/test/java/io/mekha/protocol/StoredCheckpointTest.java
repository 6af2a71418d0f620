package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.S3Server;
import io.mekha.testing.TestCluster;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Multi-level storage on real QEMU: a 3-VM ring over two agents (one in its own process)
 * checkpointed, flushed to node-local disk (L1) and shared storage (L2: a directory, or S3 on a
 * real S3-compatible server), every VM killed and the shadows dropped, then restarted from the
 * stored streams; the ring must finish with the sums of an uninterrupted run.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class StoredCheckpointTest {
    private static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path work;

    @Test
    void restartsFromLevel1AndThenFromS3AfterEveryVmAndEveryShadowIsGone() throws Exception {
        try (TestCluster vc = new TestCluster(work, 200, 30);
             S3Server s3 = new S3Server(work.resolve("s3"));
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            StorageTarget l2 = s3.bucket("checkpoints", "team-a");
            vc.bootAll();
            vc.awaitStep(15, RUN);
            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport report = vc.coordinator.checkpoint("cp1", vc.vmNames(), options, System.out::println);
            Map<String, Long> reached = vc.reachedSteps();

            FlushPlan plan = FlushPlan.level1().withLevels(List.of(StorageLevel.L1, StorageLevel.L2), l2).withCompression("zstd");
            FlushReport flush = storage.flush(CheckpointStorage.draft("ring", report, options, Instant.now()), sizes(report), plan,
                    System.out::println);
            print(flush);
            assertThat(flush.failures()).isEmpty();
            // the plan's writer limits hold on real writes: one per node disk, two to the shared target
            assertThat(flush.peakWriters()).containsOnlyKeys("L1 node n1", "L1 node n2", "L2")
                    .allSatisfy((slot, peak) -> assertThat(peak).as(slot).isBetween(1, slot.equals("L2") ? plan.level2Writers()
                            : plan.level1WritersPerNode()));
            assertThat(flush.published()).containsOnlyKeys(StorageLevel.L1, StorageLevel.L2);
            assertThat(flush.durable()).isTrue();
            assertThat(flush.writes()).filteredOn(w -> w.level() == StorageLevel.L2).allMatch(w -> w.from() == StorageLevel.L1);
            assertThat(flush.writes()).allMatch(w -> w.bytes() > 0 && w.bytes() < w.rawBytes());
            assertThat(flush.published().get(StorageLevel.L2).vms()).allMatch(v -> v.stream().sha256().length() == 64);
            assertThat(storage.holdings("ring", l2, Map.of()).get(0).complete())
                    .containsExactly(StorageLevel.L0, StorageLevel.L1, StorageLevel.L2);

            // the VC runs on and every VM crashes: the shadows, streamed out to L1, still restart in place
            vc.awaitStep(Math.min(vc.minStep() + 15, vc.steps()), RUN);
            killEveryVm(vc);
            CheckpointStorage.RestoreReport fromMemory = storage.restore("ring", "cp1", null, l2, null, null, System.out::println);
            assertThat(fromMemory.level()).isEqualTo(StorageLevel.L0);
            vc.assertFinishesExactly(reached, RUN);

            // every VM crashes again and the memory copy is gone (the restart used it up)
            killEveryVm(vc);
            assertThat(storage.holdings("ring", l2, Map.of()).get(0).complete()).containsExactly(StorageLevel.L1, StorageLevel.L2);

            CheckpointStorage.RestoreReport fromDisk = storage.restore("ring", "cp1", null, l2, null, null, System.out::println);
            assertThat(fromDisk.level()).isEqualTo(StorageLevel.L1);
            assertThat(fromDisk.skipped()).containsOnlyKeys(StorageLevel.L0);
            vc.assertFinishesExactly(reached, RUN);

            // again, from the object store only: the node-local copies are gone too
            storage.release("ring", "cp1", StorageLevel.L1, l2, false);
            assertThatThrownBy(() -> storage.release("ring", "cp1", StorageLevel.L2, l2, false))
                    .hasMessageContaining("held whole only at L2");
            CheckpointStorage.RestoreReport fromS3 = storage.restore("ring", "cp1", null, l2, null, null, System.out::println);
            assertThat(fromS3.level()).isEqualTo(StorageLevel.L2);
            vc.assertFinishesExactly(reached, RUN);
        }
    }

    @Test
    void corruptOrMissingFilesAreFoundBeforeAnyVmStartsAndTheRestartFallsBackToAGoodLevel() throws Exception {
        try (TestCluster vc = new TestCluster(work, 200, 30);
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            StorageTarget l2 = new StorageTarget.Filesystem(Files.createDirectories(work.resolve("shared")));
            vc.bootAll();
            vc.awaitStep(15, RUN);
            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport report = vc.coordinator.checkpoint("cp1", vc.vmNames(), options, System.out::println);
            Map<String, Long> reached = vc.reachedSteps();
            FlushReport flush = storage.flush(CheckpointStorage.draft("ring", report, options, Instant.now()), sizes(report),
                    FlushPlan.level1().withLevels(List.of(StorageLevel.L1, StorageLevel.L2), l2)
                            .withLevel0(FlushPlan.Level0Policy.RELEASE_WHEN_DURABLE), System.out::println);
            assertThat(flush.durable()).isTrue();
            assertThat(flush.level0Released()).isTrue();
            vc.awaitStep(Math.min(vc.minStep() + 10, vc.steps()), RUN);
            killEveryVm(vc);
            Map<String, Long> deadPids = pids(vc);

            // one flipped byte in vm1's level-1 stream (node n1), vm3's (node n2) cut short
            Path vm1 = work.resolve("n1/level1/ring/cp1/vm1.vmstate");
            Path vm3 = work.resolve("n2/level1/ring/cp1/vm3.vmstate");
            try (RandomAccessFile f = new RandomAccessFile(vm1.toFile(), "rw")) {
                f.seek(f.length() / 2);
                int b = f.read();
                f.seek(f.length() / 2);
                f.write(b ^ 0x40);
            }
            try (RandomAccessFile f = new RandomAccessFile(vm3.toFile(), "rw")) {
                f.setLength(f.length() - 4096);
            }
            CheckpointStorage.RestoreReport restore = storage.restore("ring", "cp1", null, l2, null, null, System.out::println);
            assertThat(restore.level()).isEqualTo(StorageLevel.L2);
            assertThat(restore.skipped().get(StorageLevel.L1))
                    .contains("n1/level1/ring/cp1/vm1.vmstate failed the SHA-256 check")
                    .contains("n2/level1/ring/cp1/vm3.vmstate failed the size check");
            vc.assertFinishesExactly(reached, RUN);
            killEveryVm(vc);
            deadPids = pids(vc);

            // the shared copy loses its manifest: no level is left, and nothing is started
            Files.delete(work.resolve("shared/ring/cp1/manifest.json"));
            assertThatThrownBy(() -> storage.restore("ring", "cp1", null, l2, null, null, System.out::println))
                    .hasMessageContaining("no level holds a complete, verified copy")
                    .hasMessageContaining("L1: VM 'vm1'")
                    .hasMessageContaining("L2: no manifest for checkpoint cp1")
                    .hasMessageContaining("no VM was started");
            assertThat(pids(vc)).as("no VM was started by the failed restart").isEqualTo(deadPids);
        }
    }

    @Test
    void aFlushThatRunsOutOfSpacePublishesNothingKeepsTheShadowsAndTheVmsNeverNotice() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mounting a size-limited tmpfs needs root");
        Path small = Files.createDirectories(work.resolve("small"));
        Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", small.toString()).inheritIO().start();
        assertThat(mount.waitFor()).isZero();
        try (TestCluster vc = new TestCluster(work, 200, 30);
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            StorageTarget l2 = new StorageTarget.Filesystem(small);
            vc.bootAll();
            vc.awaitStep(15, RUN);
            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport report = vc.coordinator.checkpoint("cp1", vc.vmNames(), options, System.out::println);
            Map<String, Long> reached = vc.reachedSteps();
            long before = vc.minStep();
            FlushReport flush = storage.flush(CheckpointStorage.draft("ring", report, options, Instant.now()), sizes(report),
                    FlushPlan.level1().withLevels(List.of(StorageLevel.L2), l2).withLevel0(FlushPlan.Level0Policy.RELEASE_WHEN_DURABLE),
                    System.out::println);
            print(flush);
            assertThat(flush.durable()).isFalse();
            assertThat(flush.level0Released()).isFalse();
            assertThat(flush.failures().get(StorageLevel.L2)).contains("No space left on device").contains("nothing was published");
            try (Stream<Path> left = Files.walk(small)) {
                assertThat(left.filter(Files::isRegularFile)).as("no partial stream and no manifest left behind").isEmpty();
            }
            assertThatThrownBy(() -> storage.release("ring", "cp1", StorageLevel.L0, l2, false))
                    .hasMessageContaining("held whole only at L0");

            // the VMs ran on throughout and the checkpoint still restarts from memory
            vc.awaitStep(Math.min(before + 10, vc.steps()), RUN);
            for (String vm : vc.vmNames()) {
                assertThat(vc.console(vm)).noneMatch(l -> l.contains("RING error"));
            }
            killEveryVm(vc);
            CheckpointStorage.RestoreReport restore = storage.restore("ring", "cp1", null, l2, null, null, System.out::println);
            assertThat(restore.level()).isEqualTo(StorageLevel.L0);
            vc.assertFinishesExactly(reached, RUN);
        } finally {
            new ProcessBuilder("umount", "-l", small.toString()).inheritIO().start().waitFor();
        }
    }

    @Test
    void withPartnerCopiesInMemoryTheVcRestartsFromMemoryAfterANodeIsLost() throws Exception {
        try (TestCluster vc = new TestCluster(work, 200, 30);
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            vc.bootAll();
            vc.awaitStep(15, RUN);
            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport report = vc.coordinator.checkpoint("cp1", vc.vmNames(), options, System.out::println);
            Map<String, Long> reached = vc.reachedSteps();

            CheckpointStorage.PartnerReport partners = storage.replicateLevel0("cp1", System.out::println);
            assertThat(partners.partners()).containsEntry("vm1", "n2").containsEntry("vm2", "n2").containsEntry("vm3", "n1");
            // saving to disk goes from the partner copies (a shadow streams out once): vm3's stream lands on n1
            FlushReport flush = storage.flush(CheckpointStorage.draft("ring", report, options, Instant.now()), sizes(report),
                    FlushPlan.level1(), System.out::println);
            assertThat(flush.durable()).isTrue();
            assertThat(flush.published().get(StorageLevel.L1).vm("vm3").orElseThrow().node()).isEqualTo("n1");
            assertThat(flush.published().get(StorageLevel.L1).vm("vm1").orElseThrow().node()).isEqualTo("n2");

            // node n2 is lost with its agent, vm3 and the copies it held; vm1 and vm2 crash too
            vc.awaitStep(Math.min(vc.minStep() + 10, vc.steps()), RUN);
            vc.agent2.kill();
            killEveryVmOn(vc.client1);
            CheckpointStorage.RestoreReport restore = storage.restore("ring", "cp1", null, null, null, null, System.out::println);
            assertThat(restore.level()).isEqualTo(StorageLevel.L0);
            assertThat(restore.restart().nodes()).containsOnlyKeys("vm1", "vm2", "vm3");
            assertThat(restore.restart().nodes().values()).containsOnly("n1");
            vc.assertFinishesExactly(reached, RUN);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static void killEveryVmOn(AgentClient agent) throws Exception {
        for (VmInfo vm : agent.vms()) {
            ProcessHandle.of(vm.pid()).ifPresent(p -> {
                p.destroyForcibly();
                p.onExit().join();
            });
        }
    }

    private static Map<String, Long> sizes(CheckpointReport report) {
        Map<String, Long> sizes = new HashMap<>();
        report.vms().forEach(v -> sizes.put(v.vm(), v.figures().bytesTransferred()));
        return sizes;
    }

    private static Map<String, Long> pids(TestCluster vc) throws Exception {
        Map<String, Long> pids = new HashMap<>();
        for (String vm : vc.vmNames()) {
            VmInfo info = vc.info(vm);
            pids.put(vm, info.pid());
        }
        return pids;
    }

    private static void killEveryVm(TestCluster vc) throws Exception {
        for (String vm : vc.vmNames()) {
            ProcessHandle.of(vc.info(vm).pid()).ifPresent(p -> {
                p.destroyForcibly();
                p.onExit().join();
            });
        }
    }

    private static void print(FlushReport flush) {
        flush.writes().forEach(w -> System.out.printf("  %s %s <- %s on %s: %d bytes (raw %d), queued %s, took %s%s%n", w.vm(), w.level(),
                w.from(), w.node(), w.bytes(), w.rawBytes(), w.queued(), w.took(), w.error() == null ? "" : " ERROR " + w.error()));
        System.out.println("  time to durable " + flush.timeToDurable() + ", peak writers " + flush.peakWriters());
    }
}
