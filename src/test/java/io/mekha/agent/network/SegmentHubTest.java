package io.mekha.agent.network;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.local.RingCluster;
import io.mekha.local.RingReference;
import io.mekha.model.VmSpec;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVcs;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** VMs on one segment hub talk TCP to each other: the ring workload runs to its end. */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class SegmentHubTest {

    @TempDir
    Path work;

    @Test
    void threeVmsOnOneSegmentRunTheRingToTheEnd() throws Exception {
        try (SegmentHub hub = SegmentHub.open("lan", 0);
             LocalVmRuntime runtime = new LocalVmRuntime(RuntimeConfig.defaults(work))) {
            List<QemuVm> vms = new ArrayList<>();
            for (VmSpec spec : TestVcs.ring(new RingCluster(3, 30, 20, 8, 2), hub.port(), 256)) {
                vms.add(runtime.start(spec));
            }
            for (QemuVm vm : vms) {
                assertThat(vm.console().awaitLine(l -> l.startsWith("RING done") || l.startsWith("RING error"), Duration.ofSeconds(90)))
                        .as("%s finished; console:%n%s", vm.name(), vm.console().tail(5))
                        .hasValueSatisfying(l -> assertThat(l).startsWith("RING done"));
            }
            long[][] reference = RingReference.sums(3, 30, 8, 2);
            for (int i = 0; i < 3; i++) {
                var printed = RingReference.printed(vms.get(i).console().lines(), i);
                assertThat(printed).as("steps printed by node %d", i).hasSize(30);
                assertThat(RingReference.mismatches(printed, reference, i)).isEmpty();
            }
            assertThat(hub.attached()).hasSize(3);
            assertThat(hub.framesRepeated()).isPositive();
        }
    }
}
