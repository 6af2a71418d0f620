package io.mekha.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.protocol.ProtocolListener;
import io.mekha.protocol.VmCheckpointReport;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Path;
import java.time.Duration;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * One real VM, checkpointed into a shadow mid-run in each mode, crashed, and restarted from the shadow: the VC protocol
 * with one VM, through the agent's HTTP API, as {@code mekha demo-vm} and {@code mekha bench-modes} run it.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class OneVmCheckpointRestartTest {

    @TempDir
    Path work;

    @ParameterizedTest
    @EnumSource(TransferMode.class)
    void restartedShadowContinuesTheWorkloadExactlyFromTheCut(TransferMode mode) throws Exception {
        try (EmbeddedNode node = EmbeddedNode.start(RuntimeConfig.defaults(work))) {
            QemuVm vm = node.startVm(TestVms.dirtier("vm1", 256, "-m 96 -d 8 -i 0"));
            awaitRound(vm, 5);
            if (mode == TransferMode.MTD && vm.qmp().greeting().path("version").path("qemu").path("major").asInt() < 8) {
                // QEMU 7.2 under TCG restores a VM stopped mid-precopy with corrupt memory: MTD is refused there
                assertThatThrownBy(() -> node.checkpoint("cp", vm.name(), mode, LiveStageBounds.defaults().maxLive(), ProtocolListener.NONE))
                        .hasMessageContaining("MTD needs QEMU 8 or later");
                assertThat(vm.qmp().execute("query-status").path("status").asText()).isEqualTo("running");
                return;
            }

            VmCheckpointReport checkpoint = node.checkpoint("cp", vm.name(), mode, Duration.ofSeconds(20), ProtocolListener.NONE);
            long roundAfterCheckpoint = DirtierLog.lastRoundReached(vm.console().text());

            // the source keeps running after the checkpoint...
            awaitRound(vm, roundAfterCheckpoint + 5);
            // ...until it crashes
            vm.kill();
            TreeMap<Long, String> source = DirtierLog.parse(vm.console().lines());

            node.restart("cp", ProtocolListener.NONE);
            QemuVm restarted = node.vm(vm.name());
            long firstShadowRound = awaitFirstRound(restarted);
            awaitRound(restarted, Math.max(firstShadowRound, source.lastKey()) + 3);
            TreeMap<Long, String> shadow = DirtierLog.parse(restarted.console().lines());

            assertThat(firstShadowRound)
                    .as("the shadow resumes from the cut, not later than the source had reached")
                    .isLessThanOrEqualTo(roundAfterCheckpoint + 1);
            TreeMap<Long, String[]> both = DirtierLog.overlap(source, shadow);
            assertThat(both).as("rounds printed by both the source and the restarted shadow").hasSizeGreaterThanOrEqualTo(3);
            both.forEach((round, hashes) ->
                    assertThat(hashes[1]).as("hash of round %d after restart", round).isEqualTo(hashes[0]));
            assertThat(shadow.lastKey() - shadow.firstKey() + 1).as("no round skipped after restart").isEqualTo(shadow.size());

            TransferFigures figures = checkpoint.figures();
            System.out.println(mode + " " + figures);
            assertThat(figures.mode()).isEqualTo(mode);
            assertThat(figures.bytesTransferred()).as("bytes sent to the shadow").isGreaterThan(20L << 20);
            assertThat(figures.guestPaused()).as("guest paused time from QEMU's events").isNotNull().isPositive();
            assertThat(figures.total()).isPositive();
            // every mode is Mekha's pause now: a background snapshot is stopped at the cut and resumed once armed
            assertThat(figures.mekhaPaused()).isNotNull().isGreaterThanOrEqualTo(figures.guestPaused());
            if (mode == TransferMode.MTD) {
                assertThat(figures.passes()).as("MTD sent every page at least once before the stop").isGreaterThanOrEqualTo(1);
                assertThat(figures.liveStage()).isPositive();
            }
            restarted.shutdown(Duration.ofSeconds(5));
        }
    }

    private static void awaitRound(QemuVm vm, long round) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (DirtierLog.lastRound(vm.console().lines()) < round) {
            assertThat(System.nanoTime()).as("%s reached round %d; console:%n%s", vm, round, vm.console().tail(5)).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    private static long awaitFirstRound(QemuVm vm) throws InterruptedException {
        awaitRound(vm, 1);
        return DirtierLog.parse(vm.console().lines()).firstKey();
    }
}
