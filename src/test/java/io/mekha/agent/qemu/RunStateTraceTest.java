package io.mekha.agent.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpClient;
import io.mekha.testing.NoQemuLeftBehind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** Reading the instant a guest's clock froze from QEMU's run-state trace, as QEMU 10.0 writes it. */
@ExtendWith(NoQemuLeftBehind.class)
class RunStateTraceTest {
    @TempDir
    Path dir;

    /** The command line Mekha starts its QEMUs with gets the trace from the installed QEMU, read back at every stop. */
    @Test
    @Tag("qemu")
    void aRealQemuStartedByMekhaTracesEachStopBetweenItsSendAndItsReply() throws Exception {
        QemuCommandLine.InstancePaths paths = QemuCommandLine.InstancePaths.in(dir);
        List<String> args = new QemuCommandLine(RuntimeConfig.DEFAULT_QEMU).build(VmSpec.named("traced").memoryMiB(64).build(), Accelerator.TCG,
                paths, 0, false, null);
        Process qemu = new ProcessBuilder(args).redirectErrorStream(true).redirectOutput(paths.log().toFile()).start();
        try (QmpClient qmp = QmpClient.connect(paths.qmpSocket(), Duration.ofSeconds(30))) {
            Instant previous = null;
            for (int i = 0; i < 3; i++) {
                Instant sent = Instant.now();
                qmp.submit("stop", null).await();
                Instant answered = Instant.now();
                Instant froze = RunStateTrace.lastLeftRunning(paths.runStates());
                assertThat(froze).as("stop %d: the trace's instant", i).isNotNull().isBetween(sent.minusMillis(1), answered);
                assertThat(froze).as("a new line for each stop").isNotEqualTo(previous);
                previous = froze;
                qmp.submit("cont", null).await();
            }
        } finally {
            qemu.destroyForcibly().waitFor();
        }
    }

    @Test
    void theLastChangeOutOfRunningIsTheFreezeWhateverCameAfterIt() throws Exception {
        Path trace = dir.resolve("runstate.log");
        Files.writeString(trace, """
                15076@1796666713.398123:runstate_set current_run_state 6 (prelaunch) new_state 9 (running)
                15076@1796666714.968588:runstate_set current_run_state 9 (running) new_state 4 (paused)
                15076@1796666714.990001:runstate_set current_run_state 4 (paused) new_state 9 (running)
                15076@1796666715.000250:runstate_set current_run_state 9 (running) new_state 4 (paused)
                15076@1796666715.080000:runstate_set current_run_state 4 (paused) new_state 5 (finish-migrate)
                15076@1796666715.090000:runstate_set current_run_state 5 (finish-migrate) new_state 13 (postmigrate)
                """);
        assertThat(RunStateTrace.lastLeftRunning(trace)).isEqualTo(Instant.ofEpochSecond(1796666715L, 250_000));
    }

    @Test
    void aQemuThatStoppedItselfForItsMigrationCountsToo() throws Exception {
        Path trace = dir.resolve("runstate.log");
        Files.writeString(trace, "7@1796666713.398123:runstate_set current_run_state 6 (prelaunch) new_state 9 (running)\n"
                + "7@1796666720.000001:runstate_set current_run_state 9 (running) new_state 5 (finish-migrate)\n");
        assertThat(RunStateTrace.lastLeftRunning(trace)).isEqualTo(Instant.ofEpochSecond(1796666720L, 1_000));
    }

    @Test
    void noTraceOrOneWithoutTimestampsSaysNothing() throws Exception {
        assertThat(RunStateTrace.lastLeftRunning(dir.resolve("missing.log"))).isNull();
        assertThat(RunStateTrace.lastLeftRunning(null)).isNull();
        Path untimed = dir.resolve("untimed.log");
        // without -msg timestamp=on QEMU writes no instant; a line cut short by a crash is no instant either
        Files.writeString(untimed, "runstate_set current_run_state 9 (running) new_state 4 (paused)\n"
                + "7@1796666720.00:runstate_set current_run_state 9 (running) new_state 4 (paused)\n"
                + "7@1796666721.000001:runstate_set current_run_state 9 (running) new_st");
        assertThat(RunStateTrace.lastLeftRunning(untimed)).isNull();
    }

    @Test
    void onlyTheTailOfALongTraceIsRead() throws Exception {
        Path trace = dir.resolve("runstate.log");
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 5_000; i++) {
            text.append("7@1796666000.").append(String.format("%06d", i)).append(":runstate_set current_run_state 9 (running) new_state 4 (paused)\n");
            text.append("7@1796666000.").append(String.format("%06d", i)).append(":runstate_set current_run_state 4 (paused) new_state 9 (running)\n");
        }
        Files.writeString(trace, text);
        assertThat(RunStateTrace.lastLeftRunning(trace)).isEqualTo(Instant.ofEpochSecond(1796666000L, 4_999_000));
    }
}
