package io.mekha.local.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.local.LocalVcState;
import io.mekha.local.RingCluster;
import io.mekha.local.RingReference;
import io.mekha.testing.NoQemuLeftBehind;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The local-mode CLI end to end: up, status, checkpoint, crash, restore, down — with a background agent process. */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class LocalModeCliTest {

    @TempDir
    Path work;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    @BeforeEach
    void isolateState() {
        System.setProperty("mekha.state.dir", work.resolve("state").toString());
    }

    @AfterEach
    void tearDown() {
        if (LocalVcState.of("ring").isUp()) {
            run("down", "ring");
        }
        System.clearProperty("mekha.state.dir");
    }

    private int run(String... args) {
        CommandLine cli = CliSetup.create();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    @Test
    void upStatusCheckpointCrashRestoreDown() throws Exception {
        RingCluster ring = new RingCluster(3, 1500, 30, 16, 4);
        StringBuilder yaml = new StringBuilder("name: ring\nvms:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - name: vm").append(i + 1).append("\n    memory: 256Mi\n    workload: ").append(ring.workload(i))
                    .append("\n    network: {segment: lan, address: 10.77.0.").append(i + 1).append("/24}\n");
        }
        Path file = work.resolve("ring.yaml");
        Files.writeString(file, yaml);

        assertThat(run("up", file.toString())).as(err.toString()).isZero();
        LocalVcState state = LocalVcState.find(null);
        assertThat(state.name()).isEqualTo("ring");
        awaitStep(state, 20);

        assertThat(run("status")).as(err.toString()).isZero();
        assertThat(out.toString()).contains("vm1").contains("vm3").contains("running");

        Path shared = work.resolve("shared");
        assertThat(run("checkpoint", "--id", "cp1", "--flush", "L1,L2", "--level2", shared.toString(), "--compress", "zstd",
                "--release-memory")).as(err.toString()).isZero();
        assertThat(out.toString()).contains("held whole at L1").contains("held whole at L2").contains("shadows released");
        assertThat(shared.resolve("ring/cp1/manifest.json")).exists();
        assertThat(state.checkpoints()).hasSize(1);
        assertThat(state.checkpoints().get(0).barrierHeld()).isTrue();
        long atCheckpoint = minStep(state);
        java.util.Map<String, Long> reached = new java.util.HashMap<>();
        for (var vm : state.client().vms()) {
            reached.put(vm.name(), RingReference.lastStepReached(Files.readString(Path.of(vm.consolePath()))));
        }

        awaitStep(state, atCheckpoint + 20);
        for (var vm : state.client().vms()) {
            ProcessHandle.of(vm.pid()).ifPresent(p -> {
                p.destroyForcibly();
                p.onExit().join();
            });
        }
        assertThat(run("restore", "cp1")).as(err.toString()).isZero();
        assertThat(out.toString()).contains("passed over L0").contains("restarted from L1").contains("cp1");
        awaitStep(state, atCheckpoint + 60);

        long[][] reference = ring.reference();
        for (var vm : state.client().vms()) {
            TreeMap<Long, Long> printed = RingReference.printed(Files.readAllLines(Path.of(vm.consolePath())), RingCluster.node(vm.name()));
            assertThat(printed.firstKey()).as("%s resumed from the cut", vm.name()).isLessThanOrEqualTo(reached.get(vm.name()) + 1);
            assertThat(RingReference.mismatches(printed, reference, RingCluster.node(vm.name()))).isEmpty();
        }

        // a newer checkpoint, keeping only one: cp1 goes from every level and from the VC's records
        assertThat(run("checkpoint", "--id", "cp2", "--flush", "L2", "--level2", shared.toString(), "--keep", "1"))
                .as(err.toString()).isZero();
        assertThat(out.toString()).contains("deleted older checkpoint cp1");
        assertThat(state.checkpoints()).extracting(r -> r.id()).containsExactly("cp2");
        assertThat(shared.resolve("ring/cp1")).doesNotExist();
        assertThat(shared.resolve("ring/cp2/manifest.json")).exists();
        assertThat(run("status")).as(err.toString()).isZero();
        assertThat(out.toString()).containsPattern("cp2 .*\\[L0, L2\\]");

        assertThat(run("down")).as(err.toString()).isZero();
        assertThat(state.isUp()).isFalse();
        assertThat(Files.exists(state.dir())).isFalse();
    }

    @Test
    void badInputIsRefusedWithOneClearLine() throws Exception {
        Path file = work.resolve("bad.yaml");
        Files.writeString(file, "name: ring\nvms:\n  - {name: vm1, memory: 256Mi}\n  - {name: vm1, memory: 256Mi}\n");
        assertThat(run("up", file.toString())).isEqualTo(2);
        assertThat(err.toString()).contains("mekha up:").contains("duplicate VM name 'vm1'").doesNotContain("at io.mekha");
        assertThat(run("status")).isNotZero();
        assertThat(err.toString()).contains("no VC is up");
        assertThat(run("checkpoint", "--flush", "L2")).isEqualTo(2);
        assertThat(err.toString()).contains("needs a level-2 target").contains("--level2 DIR");
        assertThat(run("checkpoint", "--flush", "L5")).isEqualTo(2);
        assertThat(err.toString()).contains("unknown storage level 'L5'");
        assertThat(run("restore", "--from", "L9", "cp1")).isEqualTo(2);
        assertThat(err.toString()).contains("--from: unknown storage level 'L9'");
    }

    private static long minStep(LocalVcState state) throws Exception {
        long min = Long.MAX_VALUE;
        for (var vm : state.client().vms()) {
            TreeMap<Long, Long> printed = RingReference.printed(Files.readAllLines(Path.of(vm.consolePath())), RingCluster.node(vm.name()));
            min = Math.min(min, printed.isEmpty() ? 0 : printed.lastKey());
        }
        return min;
    }

    private static void awaitStep(LocalVcState state, long step) throws Exception {
        long deadline = System.nanoTime() + java.time.Duration.ofMinutes(3).toNanos();
        while (minStep(state) < step) {
            assertThat(System.nanoTime()).as("ring reached step %d", step).isLessThan(deadline);
            Thread.sleep(200);
        }
    }
}
