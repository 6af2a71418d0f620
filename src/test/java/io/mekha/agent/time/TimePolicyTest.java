package io.mekha.agent.time;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.AgentService;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.local.GuestImage;
import io.mekha.model.TimePolicy;
import io.mekha.model.VmSpec;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.RestartReport;
import io.mekha.protocol.VmCheckpointReport;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.SingleAgent;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Guest clocks across a restart from a checkpoint taken 20 s earlier, under each time policy, on
 * real QEMU with qemu-guest-agent in the guests. The test reads the guests' clocks itself, through
 * their agents, independently of what Mekha reports.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class TimePolicyTest {
    private static final Duration GAP = Duration.ofSeconds(20);
    private static final Duration SLEW_PERIOD = Duration.ofSeconds(8);
    private static final Duration TOLERANCE = Duration.ofMillis(200);

    @TempDir
    Path work;

    private final GuestClock clocks = new GuestClock(Clock.systemUTC());

    private static VmSpec vm(String name, boolean agent) {
        GuestImage guest = GuestImage.locate().requireBuilt();
        // a guest that keeps busy: an idle one lets QEMU finish its precopy early, pausing it briefly (see MtdTransfer)
        return VmSpec.named(name).boot(guest.kernel(), guest.initrd()).workload("dirtier -m 32 -d 2 -i 0").guestAgent(agent).build();
    }

    @ParameterizedTest
    @EnumSource(TimePolicy.class)
    void guestClocksAcrossARestartTwentySecondsLater(TimePolicy policy) throws Exception {
        try (SingleAgent node = new SingleAgent(work)) {
            LocalVmRuntime runtime = node.runtime;
            AgentService agent = node.agent;
            Coordinator coordinator = node.coordinator;
            agent.startVm(vm("vm1", true));
            agent.startVm(vm("vm2", true));
            Map<String, QemuVm> vms = Map.of("vm1", runtime.running().get(0), "vm2", runtime.running().get(1));
            for (QemuVm vm : vms.values()) {
                awaitAgent(vm);
                clocks.step(vm); // in sync with the host to begin with, as with NTP
            }

            Map<String, GuestClock.Reading> before = new HashMap<>();
            for (var e : vms.entrySet()) {
                before.put(e.getKey(), clocks.read(e.getValue()));
            }
            CheckpointReport checkpoint = coordinator.checkpoint("cp1", List.of("vm1", "vm2"),
                    CheckpointOptions.defaults().withTimePolicy(policy), System.out::println);
            for (QemuVm vm : vms.values()) {
                vm.kill();
            }
            Thread.sleep(GAP.toMillis());

            RestartReport restart = coordinator.restart("cp1", null, SLEW_PERIOD, System.out::println);
            Map<String, GuestClock.Reading> after = new HashMap<>();
            for (String name : vms.keySet()) {
                QemuVm restarted = runtime.running().stream().filter(v -> v.name().equals(name)).findFirst().orElseThrow();
                after.put(name, clocks.read(restarted));
            }
            System.out.println(io.mekha.local.Reports.restart(restart));

            for (String name : vms.keySet()) {
                VmCheckpointReport cut = checkpoint.vms().stream().filter(v -> v.vm().equals(name)).findFirst().orElseThrow();
                Instant resumed = restart.resumedAt().get(name);
                GuestClock.Reading b = before.get(name);
                GuestClock.Reading a = after.get(name);
                // what the guest clock reads if only the time it actually ran has passed for it
                Instant virtual = b.guest().plus(Duration.between(b.host(), cut.stoppedAt())).plus(Duration.between(resumed, a.host()));
                Duration wallGap = Duration.between(cut.stoppedAt(), resumed);
                Duration jump = Duration.between(virtual, a.guest());
                assertThat(wallGap).isGreaterThanOrEqualTo(GAP);
                switch (policy) {
                    case VIRTUAL -> assertThat(jump.abs()).as("%s: clock continued from the cut (jump %s)", name, jump).isLessThan(TOLERANCE);
                    case STEP -> assertThat(jump.minus(wallGap).abs()).as("%s: jumped by the wall gap %s (jump %s)", name, wallGap, jump)
                            .isLessThan(TOLERANCE);
                    // by the time this test reads the clock the slew has been running for a moment: the no-step check uses
                    // the reading Mekha takes right as the slew starts, and the slew itself is checked below
                    case SLEW -> assertThat(restart.clocks().get(name).jump().abs())
                            .as("%s: slewing starts from the cut, no step", name).isLessThan(TOLERANCE);
                }
                assertThat(restart.clocks().get(name).jump()).as("Mekha's own report of %s's jump", name).isNotNull();
            }
            if (policy == TimePolicy.VIRTUAL) {
                Duration offsetBefore = before.get("vm2").offset().minus(before.get("vm1").offset());
                Duration offsetAfter = after.get("vm2").offset().minus(after.get("vm1").offset());
                assertThat(offsetAfter.minus(offsetBefore).abs()).as("the offset between the VMs' clocks is kept")
                        .isLessThanOrEqualTo(restart.resumeSkew().plus(Duration.ofMillis(50)));
            }
            if (policy == TimePolicy.SLEW) {
                assertSlewsForwardToHostTime(runtime);
            }
        }
    }

    private void assertSlewsForwardToHostTime(LocalVmRuntime runtime) throws Exception {
        Map<String, Instant> last = new HashMap<>();
        long deadline = System.nanoTime() + SLEW_PERIOD.plusSeconds(4).toNanos();
        while (System.nanoTime() < deadline) {
            for (QemuVm vm : runtime.running()) {
                GuestClock.Reading r = clocks.read(vm);
                Instant previous = last.put(vm.name(), r.guest());
                if (previous != null) {
                    assertThat(r.guest()).as("%s's clock never goes backwards while slewing", vm.name()).isAfterOrEqualTo(previous);
                }
            }
            Thread.sleep(100);
        }
        for (QemuVm vm : runtime.running()) {
            assertThat(clocks.read(vm).offset().abs()).as("%s reached host time within the slew period", vm.name())
                    .isLessThan(TOLERANCE);
        }
    }

    @Test
    void stepOnAGuestWithoutAnAgentIsRefusedBeforeAnythingIsPaused() throws Exception {
        try (SingleAgent node = new SingleAgent(work)) {
            LocalVmRuntime runtime = node.runtime;
            AgentService agent = node.agent;
            Coordinator coordinator = node.coordinator;
            agent.startVm(vm("vm1", true));
            agent.startVm(vm("vm2", false));
            assertThatThrownBy(() -> coordinator.checkpoint("cp1", List.of("vm1", "vm2"),
                    CheckpointOptions.defaults().withTimePolicy(TimePolicy.STEP), System.out::println))
                    .isInstanceOf(CheckpointFailedException.class)
                    .hasMessageContaining("VM 'vm2' has no guest agent")
                    .hasMessageContaining("Nothing was paused");
            for (var vm : agent.vms()) {
                assertThat(vm.state()).as("%s runs", vm.name()).isEqualTo("running");
                assertThat(vm.checkpoint()).isNull();
            }
            assertThat(runtime.running()).as("no shadow was started").hasSize(2);
        }
    }

    private void awaitAgent(QemuVm vm) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!clocks.agentAnswers(vm)) {
            assertThat(System.nanoTime()).as("%s's guest agent answers", vm.name()).isLessThan(deadline);
            Thread.sleep(250);
        }
    }
}
