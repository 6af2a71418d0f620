package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.testing.HttpGate;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A restart that one node refuses is called off everywhere before Tr: no VM of the VC is put back
 * to the cut while another runs on, the running VMs keep their QEMUs, and the copies that could
 * still serve (the other nodes' shadows) are kept.
 */
@Tag("qemu")
@Tag("faults")
@ExtendWith(NoQemuLeftBehind.class)
class RestartCallOffTest {
    private static final Duration RUN = Duration.ofSeconds(240);


    @TempDir
    Path work;

    @Test
    void aRestartOneNodeRefusesLeavesEveryRunningVmAsItWasAndTheOtherShadowsHeld() throws Exception {
        try (TestCluster vc = new TestCluster(work, 100000, 50)) {
            vc.bootAll();
            vc.awaitStep(5, RUN);
            vc.coordinator.checkpoint("cp1", vc.vmNames(), CheckpointOptions.defaults(), System.out::println);
            Map<String, Long> pids = new LinkedHashMap<>();
            for (String vm : vc.vmNames()) {
                pids.put(vm, vc.info(vm).pid());
            }
            long before = vc.minStep();

            // node n2 refuses its part of the restart (as it would if vm3's copy were gone or its guest agent missing)
            try (HttpGate gate = new HttpGate(vc.client2.base());
                 Coordinator coordinator = new Coordinator(List.of(vc.client1,
                         new AgentClient("n2", gate.uri(), vc.token.header(), Duration.ofSeconds(30))), java.time.Clock.systemUTC())) {
                gate.refuseAt("POST /v1/checkpoints/cp1/restart"::equals);
                assertThatThrownBy(() -> coordinator.restart("cp1", System.out::println))
                        .isInstanceOf(CheckpointFailedException.class)
                        .hasMessageContaining("n2")
                        .hasMessageContaining("called off on every node")
                        .hasMessageContaining("vm1, vm2 left as they were");
            }

            for (String vm : vc.vmNames()) {
                assertThat(vc.info(vm).pid()).as("%s still runs in the QEMU it ran in before the restart", vm).isEqualTo(pids.get(vm));
                assertThat(vc.info(vm).state()).as("%s runs", vm).isEqualTo("running");
            }
            assertThat(shadowsOf("vm1")).as("vm1's shadow is held still: level 0 of n1 can serve").hasSize(1);
            assertThat(shadowsOf("vm2")).as("vm2's shadow is held still").hasSize(1);
            assertThat(shadowsOf("vm3")).as("vm3's shadow is held still").hasSize(1);
            vc.awaitStep(before + 10, RUN); // the ring goes on over the same connections: nobody went back to the cut
            List<String> errors = vc.vmNames().stream().flatMap(vm -> {
                try {
                    return vc.console(vm).stream();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }).filter(l -> l.contains("RING error")).toList();
            assertThat(errors).isEmpty();
            // and the checkpoint still restarts the VC from memory, exactly
            vc.coordinator.restart("cp1", System.out::println);
            vc.awaitStep(before + 5, RUN);
            Map<String, List<String>> consoles = new LinkedHashMap<>();
            for (String vm : vc.vmNames()) {
                consoles.put(vm, vc.console(vm));
            }
            assertThat(vc.mismatches(consoles)).isEmpty();
        }
    }

    private static List<ProcessHandle> shadowsOf(String vm) {
        return NoQemuLeftBehind.qemuDescendants().stream()
                .filter(p -> p.info().commandLine().orElse("").contains("/" + vm + ".shadow-"))
                .toList();
    }
}
