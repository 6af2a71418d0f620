package io.mekha.agent;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.local.DirtierLog;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14, fault 8: the monitor connection breaks while a VM is paused at its cut, so the {@code cont} that should
 * end the pause never reaches QEMU. Before the resume guard the VM stayed paused for good while its status said
 * FAILED (or ABORTED, from the watchdog), "the VM was resumed". Now the agent reconnects to the monitor and keeps
 * resuming the VM until QEMU reports it running, and the status says what happened. Real QEMU, in-process agent.
 */
@Tag("qemu")
@Tag("faults")
@ExtendWith(NoQemuLeftBehind.class)
class PausedVmGuardTest {
    private static final Duration SETTLE = Duration.ofSeconds(30);

    @TempDir
    Path work;

    private static PrepareRequest stopAndCopy(Duration pauseDeadline) {
        return request("StopAndCopy", pauseDeadline);
    }

    private static PrepareRequest request(String mode, Duration pauseDeadline) {
        return new PrepareRequest(List.of("vm1"), mode, null, null, pauseDeadline, Map.of(), null);
    }

    /** Both ways into a shadow: StopAndCopy, and MTD, whose migration goes through the switchover-holding relay. */
    @ParameterizedTest
    @ValueSource(strings = {"StopAndCopy", "MTD"})
    void aResumeThatCannotReachQemuIsRetriedOnANewMonitorConnectionUntilTheVmRuns(String mode) throws Exception {
        try (AgentService agent = agentWithOneVm()) {
            agent.prepare("cp1", request(mode, Duration.ofSeconds(60)));
            agent.suspend("cp1", agent.now().plusMillis(100));
            assertThat(only(agent.awaitPhase("cp1", VmPhase.CAPTURED, SETTLE)).phase()).isEqualTo(VmPhase.CAPTURED);

            agent.qemu("vm1").qmp().close(); // the monitor connection breaks while the VM is paused at its cut
            agent.resume("cp1", agent.now());

            VmCheckpointStatus vm = awaitGuardDone(agent, "cp1");
            assertThat(agent.stillPausedByMekha()).isEmpty();
            assertThat(vm.phase()).isEqualTo(VmPhase.FAILED);
            assertThat(vm.error()).contains("resume failed").contains("resumed by the agent's guard");
            assertRunsAndWorks(agent);

            // the VM is free again, and its monitor works: the next checkpoint goes through
            agent.discard("cp1");
            agent.prepare("cp2", stopAndCopy(Duration.ofSeconds(60)));
            agent.suspend("cp2", agent.now().plusMillis(100));
            agent.awaitPhase("cp2", VmPhase.CAPTURED, SETTLE);
            agent.resume("cp2", agent.now());
            assertThat(only(agent.awaitPhase("cp2", VmPhase.RESUMED, SETTLE)).phase()).isEqualTo(VmPhase.RESUMED);
            assertThat(agent.vm("vm1").state()).isEqualTo("running");
        }
    }

    @Test
    void whenTheCoordinatorIsSilentAndTheMonitorIsBrokenTheWatchdogStillGetsTheVmRunning() throws Exception {
        try (AgentService agent = agentWithOneVm()) {
            Duration deadline = Duration.ofSeconds(2);
            agent.prepare("cp1", stopAndCopy(deadline));
            Instant ts = agent.now().plusMillis(100);
            agent.suspend("cp1", ts);
            agent.awaitPhase("cp1", VmPhase.CAPTURED, SETTLE);
            agent.qemu("vm1").qmp().close(); // and no resume ever comes

            VmCheckpointStatus vm = awaitGuardDone(agent, "cp1");
            Instant running = agent.now();
            assertThat(agent.stillPausedByMekha()).isEmpty();
            assertThat(vm.phase()).isEqualTo(VmPhase.ABORTED);
            assertThat(vm.error()).contains("no resume from the coordinator").contains("resumed by the agent's guard");
            assertRunsAndWorks(agent);
            // the watchdog fires at Ts + deadline; the guard's first tries follow within a second
            assertThat(Duration.between(ts, running)).isLessThan(deadline.plus(SETTLE));
            System.out.printf("VM running again %d ms after Ts (pause deadline %s)%n", Duration.between(ts, running).toMillis(), deadline);
        }
    }

    private AgentService agentWithOneVm() throws Exception {
        LocalVmRuntime runtime = new LocalVmRuntime(RuntimeConfig.defaults(work));
        AgentService agent = new AgentService("n1", runtime, new RendezvousClock(Clock.systemUTC()));
        agent.startVm(TestVms.dirtier("vm1", 128, "-m 8 -d 2 -i 100"));
        awaitRound(agent, 2);
        return agent;
    }

    /** The VM's status once the resume guard has said its last word on it (running again, or its QEMU gone). */
    private static VmCheckpointStatus awaitGuardDone(AgentService agent, String checkpoint) throws Exception {
        long until = System.nanoTime() + SETTLE.toNanos();
        CheckpointStatus status = agent.status(checkpoint);
        while (!(only(status).phase().terminal() && String.valueOf(only(status).error()).contains("by the agent's guard"))) {
            assertThat(System.nanoTime()).as("the guard got vm1 running; last status: %s", status).isLessThan(until);
            status = agent.awaitChange(checkpoint, status.version(), Duration.ofMillis(500));
        }
        return only(status);
    }

    private static void assertRunsAndWorks(AgentService agent) throws Exception {
        assertThat(agent.vm("vm1").state()).isEqualTo("running");
        long round = DirtierLog.lastRound(agent.qemu("vm1").console().lines());
        awaitRound(agent, round + 3); // the guest itself runs on
    }

    private static void awaitRound(AgentService agent, long round) throws Exception {
        long until = System.nanoTime() + SETTLE.toNanos();
        while (DirtierLog.lastRound(agent.qemu("vm1").console().lines()) < round) {
            assertThat(System.nanoTime()).as("vm1 reaches round %d", round).isLessThan(until);
            Thread.sleep(100);
        }
    }

    private static VmCheckpointStatus only(CheckpointStatus status) {
        assertThat(status.vms()).hasSize(1);
        return status.vms().get(0);
    }
}
