package io.mekha.agent.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.model.TransferMode;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Level 0 as a held stream keeps its memory bound: past its bound the live stage ends (MEMORY_BOUND)
 * instead of holding more. In use the bound is the guest's RAM plus room for pages sent again; here
 * it is set below what the guest holds, so the first pass crosses it. A held stream works over any
 * QEMU the agent can meet on a socket; here a local one.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class HeldStreamTest {
    @TempDir
    Path work;

    @Test
    void aStreamPastItsBoundEndsTheLiveStageAndIsDroppedOnAbort() throws Exception {
        try (LocalVmRuntime runtime = new LocalVmRuntime(RuntimeConfig.defaults(work))) {
            QemuVm vm = runtime.start(TestVms.dirtier("vm1", 256, "-m 48 -d 48 -i 0"));
            long bound = 24L << 20;
            HeldStream held = new HeldStream(vm, work.resolve("level0/vm1.stream"), bound);
            Level0Transfer transfer = Level0Transfer.prepare(TransferMode.MTD, vm, held, LiveStageBounds.defaults());
            transfer.startLive();
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            LiveEndingCondition.Reason reason = LiveEndingCondition.Reason.NOT_MET;
            while (reason == LiveEndingCondition.Reason.NOT_MET) {
                assertThat(System.nanoTime()).as("the live stage ends within 60 s (%d bytes held)", held.bytes()).isLessThan(deadline);
                Thread.sleep(20);
                reason = transfer.pollLive();
            }
            assertThat(reason).isEqualTo(LiveEndingCondition.Reason.MEMORY_BOUND);
            assertThat(held.bytes()).isGreaterThan(bound);
            assertThat(held.boundReached()).isTrue();

            transfer.abort();
            assertThat(Files.exists(work.resolve("level0/vm1.stream"))).as("an aborted stream frees its memory").isFalse();
            assertThat(vm.qmp().execute("query-status").path("status").asText()).as("the VM runs on").isEqualTo("running");
        }
    }
}
