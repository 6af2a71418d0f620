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
        Path file = ringFile(ring);

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

        // a newer checkpoint, a coordinated background snapshot this time, keeping only one: cp1 goes from every level and
        // from the VC's records
        assertThat(run("checkpoint", "--id", "cp2", "--mode", "BackgroundSnapshot", "--flush", "L2", "--level2", shared.toString(),
                "--keep", "1")).as(err.toString()).isZero();
        assertThat(out.toString()).contains("streams on to level 0");
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
        assertThat(run("protect", "--window", "5x")).isEqualTo(2);
        assertThat(err.toString()).contains("--window '5x' is not a duration").contains("90s, 5m");
        assertThat(run("protect", "--max-recoveries", "0")).isEqualTo(2);
        assertThat(err.toString()).contains("the recovery limit must be at least 1");
    }

    /**
     * {@code mekha protect}: a VM's QEMU dies and the VC is restored by itself from its checkpoint, exactly; the next death
     * is past its limit of one, so it stops with the reason (exit 3) and keeps the history.
     */
    @Test
    void protectRestoresTheVcByItselfAndStopsAtItsLimit() throws Exception {
        RingCluster ring = new RingCluster(3, 100000, 30, 16, 4);
        Path file = ringFile(ring);
        assertThat(run("up", file.toString())).as(err.toString()).isZero();
        LocalVcState state = LocalVcState.find(null);
        awaitStep(state, 15);
        assertThat(run("checkpoint", "--id", "cp1")).as(err.toString()).isZero();
        java.util.Map<String, Long> reached = new java.util.HashMap<>();
        for (var vm : state.client().vms()) {
            reached.put(vm.name(), RingReference.lastStepReached(Files.readString(Path.of(vm.consolePath()))));
        }

        StringWriter protectOut = new StringWriter();
        StringWriter protectErr = new StringWriter();
        java.util.concurrent.CompletableFuture<Integer> protect = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            CommandLine cli = CliSetup.create();
            cli.setOut(new PrintWriter(protectOut, true));
            cli.setErr(new PrintWriter(protectErr, true));
            return cli.execute("protect", "--max-recoveries", "1", "--backoff", "0s", "--max-backoff", "0s");
        });
        awaitText(protectOut, "protecting VC 'ring'");
        kill(state, "vm2");
        awaitText(protectOut, "recovered: every VM of VC 'ring' runs again from cp1 at L0");
        long restored = minStep(state);
        awaitStep(state, restored + 20);
        long[][] reference = ring.reference();
        for (var vm : state.client().vms()) {
            TreeMap<Long, Long> printed = RingReference.printed(Files.readAllLines(Path.of(vm.consolePath())), RingCluster.node(vm.name()));
            assertThat(printed.firstKey()).as("%s resumed from the cut", vm.name()).isLessThanOrEqualTo(reached.get(vm.name()) + 1);
            assertThat(RingReference.mismatches(printed, reference, RingCluster.node(vm.name()))).isEmpty();
        }
        kill(state, "vm1");
        assertThat(protect.get(2, java.util.concurrent.TimeUnit.MINUTES)).as(protectOut.toString()).isEqualTo(3);
        assertThat(protectErr.toString()).contains("mekha protect: VM vm1's QEMU").contains("exited").doesNotContain("at io.mekha")
                .contains("1 recovery within 10m already, the limit");
        var history = io.mekha.agent.api.Json.mapper().readTree(state.dir().resolve("recoveries.json").toFile());
        assertThat(history.path("history")).hasSize(1);
        assertThat(history.path("history").get(0).path("level").asText()).isEqualTo("L0");
        assertThat(history.path("history").get(0).path("failed").get(0).asText()).isEqualTo("vm2");
        assertThat(history.path("stoppedBecause").asText()).contains("the limit");
    }

    /**
     * Progress of the long steps: on a terminal (the command run under {@code script}, which gives it a pseudo-terminal)
     * one line redrawn in place for the live stage, the flush to L1 and the copy to L2, and a restore from L1; without one
     * (in-process, output to a writer) plain lines only, for a restore from L2.
     */
    @Test
    void longStepsShowProgressOnATerminalAndPlainLinesInALog() throws Exception {
        RingCluster ring = new RingCluster(3, 100000, 30, 16, 4);
        assertThat(run("up", ringFile(ring).toString())).as(err.toString()).isZero();
        LocalVcState state = LocalVcState.find(null);
        awaitStep(state, 5);
        Path shared = work.resolve("shared");

        String checkpoint = onATerminal("checkpoint", "--id", "cp1", "--flush", "L1,L2", "--level2", shared.toString());
        String erase = "\u001b[K";
        assertThat(checkpoint).contains("\rlive stage: 3 VMs, ").contains(erase)
                .containsPattern("\rlive stage: 3 VMs past their live stage, \\d+ passes at most, [0-9.]+ [KMG]iB sent, [0-9.]+ [KMG]iB/s,"
                        + " done in [0-9.]+ s")
                .containsPattern("\rflush to L1, L2: +\\d+ % \\[[#.]{20}\\] \\d of 6 done, vm\\d (saving|verifying|copying)")
                .containsPattern("\rflush to L1, L2: 100 % \\[#{20}\\] 6 of 6 done, [0-9.]+ [KMG]iB moved, [0-9.]+ [KMG]iB/s, done in")
                .contains("held whole at L2");
        // a step's own lines are never written into the middle of a progress line
        assertThat(checkpoint).contains("==> ").doesNotContainPattern("(?<!\\n|\\r\\u001b\\[K|^)==> ");

        String restore = onATerminal("restore", "--from", "L1", "cp1");
        assertThat(restore).containsPattern("\rrestore cp1: 100 % \\[#{20}\\] 6 of 6 done, [0-9.]+ [KMG]iB moved, [0-9.]+ [KMG]iB/s, done in")
                .contains("restarted from L1");

        out.getBuffer().setLength(0);
        assertThat(run("restore", "--from", "L2", "cp1")).as(err.toString()).isZero();
        assertThat(out.toString()).doesNotContain("\r").doesNotContain("\u001b").doesNotContain("[#")
                .containsPattern("(?m)^restore cp1: 100 % 6 of 6 done, [0-9.]+ [KMG]iB moved, [0-9.]+ [KMG]iB/s, done in [0-9.]+ s$")
                .contains("restarted from L2");
        awaitStep(state, minStep(state) + 5);
    }

    /** Runs {@code mekha ARGS} as a process of its own on a pseudo-terminal ({@code script}); returns what it wrote there. */
    private String onATerminal(String... args) throws Exception {
        java.util.List<String> command = new java.util.ArrayList<>(java.util.List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dmekha.state.dir=" + work.resolve("state"), "-cp", System.getProperty("java.class.path"), CliMain.class.getName()));
        command.addAll(java.util.List.of(args));
        String line = command.stream().map(a -> "'" + a.replace("'", "'\\''") + "'").collect(java.util.stream.Collectors.joining(" "));
        Process script = new ProcessBuilder("script", "--quiet", "--return", "--flush", "--command", line, "/dev/null")
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectErrorStream(true).start();
        String text = new String(script.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(script.waitFor()).as(text).isZero();
        assertThat(text).as("the command saw a terminal").doesNotContain("not a terminal");
        return text;
    }

    /** The VC description of {@code ring}: three VMs of 256 MiB on one segment. */
    private Path ringFile(RingCluster ring) throws Exception {
        StringBuilder yaml = new StringBuilder("name: ring\nvms:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - name: vm").append(i + 1).append("\n    memory: 256Mi\n    workload: ").append(ring.workload(i))
                    .append("\n    network: {segment: lan, address: 10.77.0.").append(i + 1).append("/24}\n");
        }
        return Files.writeString(work.resolve("ring.yaml"), yaml);
    }

    private static void kill(LocalVcState state, String name) throws Exception {
        ProcessHandle.of(state.client().vm(name).pid()).ifPresent(p -> {
            p.destroyForcibly();
            p.onExit().join();
        });
    }

    private static void awaitText(StringWriter out, String text) throws Exception {
        long deadline = System.nanoTime() + java.time.Duration.ofMinutes(2).toNanos();
        while (!out.toString().contains(text)) {
            assertThat(System.nanoTime()).as("%s in:%n%s", text, out).isLessThan(deadline);
            Thread.sleep(100);
        }
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
