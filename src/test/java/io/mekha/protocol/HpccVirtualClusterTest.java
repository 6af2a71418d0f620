package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.api.AgentDtos.ExecRequest;
import io.mekha.agent.api.AgentDtos.ExecResult;
import io.mekha.local.HpccOutput;
import io.mekha.local.MpiImage;
import io.mekha.storage.StorageLevel;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The acceptance test the project exists for: HPC Challenge (software nobody here wrote, with its
 * own verification) across a 3-VM MPI virtual cluster on two agents, checkpointed (MTD) in the
 * middle of its run, run on, every VM killed, the VC restarted from the checkpoint — once from
 * memory, once from disk — and HPCC must finish with every check passed, as an uninterrupted run
 * does. The VMs' disks are in the checkpoint: a file written before the cut is there after each
 * restart, one written after it is not.
 */
@Tag("qemu")
@Tag("hpcc")
@ExtendWith(NoQemuLeftBehind.class)
class HpccVirtualClusterTest {
    private static final Duration RUN = Duration.ofMinutes(12);
    private static final String OUTPUT = "/root/hpccoutf.txt";

    @TempDir
    Path work;

    @Test
    void hpccPassesEveryCheckAfterTheVcRestartsFromAMidRunCheckpointFromMemoryAndFromDisk() throws Exception {
        MpiImage image = MpiImage.locate().requireBuilt();
        try (TestCluster vc = new TestCluster(work, port -> image.cluster(3, 256, port));
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            vc.bootAll();
            sh(vc, "vm1", "echo written-before-the-cut > /root/before-cut.txt && sync");
            sh(vc, "vm1", "cd /root && rm -f hpccoutf.txt && (nohup mpirun --allow-run-as-root -np 3 --host vm1,vm2,vm3 hpcc"
                    + " > mpirun.log 2>&1 &)");
            awaitOutput(vc, "Begin of StarDGEMM section.");

            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport report = vc.coordinator.checkpoint("cp1", vc.vmNames(), options, System.out::println);
            assertThat(report.barrierHeld()).isTrue();
            FlushReport flush = storage.flush(CheckpointStorage.draft("hpcc", report, options, Instant.now()), Map.of(), FlushPlan.level1(),
                    System.out::println);
            assertThat(flush.durable()).as(flush.failures().toString()).isTrue();
            assertThat(flush.published().get(StorageLevel.L1).vms()).allMatch(v -> v.disk() != null);

            sh(vc, "vm1", "echo written-after-the-cut > /root/after-cut.txt && sync");
            awaitOutput(vc, "Begin of SingleSTREAM section.");

            for (StorageLevel expected : List.of(StorageLevel.L0, StorageLevel.L1)) {
                killEveryVm(vc);
                CheckpointStorage.RestoreReport restore = storage.restore("hpcc", "cp1", null, null, null, null, System.out::println);
                assertThat(restore.level()).isEqualTo(expected);
                String output = awaitOutput(vc, "End of HPC Challenge tests.");
                assertThat(HpccOutput.problems(output)).as("HPCC's own verification after the restart from %s", expected).isEmpty();
                System.out.printf("HPCC after the restart from %s: %s%n", expected, HpccOutput.summary(output));
                assertThat(sh(vc, "vm1", "cat /root/before-cut.txt")).contains("written-before-the-cut");
                assertThat(sh(vc, "vm1", "ls /root")).as("a file written after the cut is gone").doesNotContain("after-cut.txt");
            }
        }
    }

    private static String sh(TestCluster vc, String vm, String command) throws Exception {
        ExecResult r = vc.clientOf(vm).exec(vm, new ExecRequest(List.of("/bin/sh", "-c", command), null, Duration.ofSeconds(60)));
        assertThat(r.succeeded()).as("%s: %s", command, r).isTrue();
        return r.stdout();
    }

    /** Waits until HPCC's output file contains {@code marker}; returns the file. */
    private static String awaitOutput(TestCluster vc, String marker) throws Exception {
        long deadline = System.nanoTime() + RUN.toNanos();
        String last = "";
        while (System.nanoTime() < deadline) {
            ExecResult r = vc.clientOf("vm1").exec("vm1",
                    new ExecRequest(List.of("/bin/sh", "-c", "cat " + OUTPUT + " 2>/dev/null; true"), null, Duration.ofSeconds(60)));
            last = r.stdout();
            if (last.contains(marker)) {
                return last;
            }
            Thread.sleep(3000);
        }
        throw new AssertionError("HPCC did not reach '" + marker + "' within " + RUN + "; its output ends: "
                + last.substring(Math.max(0, last.length() - 600)));
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
