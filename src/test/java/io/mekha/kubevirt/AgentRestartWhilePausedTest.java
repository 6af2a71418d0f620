package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.server.BearerToken;
import io.mekha.local.DirtierLog;
import io.mekha.protocol.AgentClient;
import io.mekha.testing.AgentProcess;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 14, fault 7: the node's agent (KubeVirt runtime, its own process) is SIGKILLed while a VMI's QEMU is paused at
 * its cut. KubeVirt's QEMU outlives the agent, and nobody else resumes it: before the pause journal the restarted
 * agent answered 404 for the checkpoint and the VM stayed paused for good. Now the agent that comes up next on the node
 * finds what the dead one paused, checks it is the same QEMU process, and resumes it.
 */
@Tag("qemu")
@Tag("faults")
@ExtendWith(NoQemuLeftBehind.class)
class AgentRestartWhilePausedTest {
    private static final Duration SETTLE = Duration.ofSeconds(30);

    @TempDir
    Path work;

    /** StopAndCopy, and MTD, whose held stream also holds the switchover in the agent that is killed. */
    @ParameterizedTest
    @ValueSource(strings = {"StopAndCopy", "MTD"})
    void aVmPausedByAnAgentThatWasKilledIsResumedByTheNextAgentOnTheNode(String mode) throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        BearerToken token = BearerToken.random();
        Path tokenFile = work.resolve("agent.token");
        token.write(tokenFile);
        Path agentWork = Files.createDirectories(work.resolve("agent")); // a hostPath on a real node: it outlives the pod
        List<String> args = List.of("--token-file", tokenFile.toString(), "--runtime", "kubevirt");

        try (LauncherPods pods = new LauncherPods(work)) {
            LauncherPods.Launcher pod = pods.launch("vm1-a", KubeVirtAgentTest.NS, TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 200"), "");
            LauncherPods.awaitRound(pod.console(), 3);
            try (AgentProcess first = AgentProcess.start("n1", agentWork, args)) {
                AgentClient client = new AgentClient("n1", first.uri(), token.header(), SETTLE);
                awaitState(client, "running");
                pods.nameTo(client);
                client.prepare("kp1", new PrepareRequest(List.of("hpc_vm1"), mode, null, null, Duration.ofSeconds(60), null, null));
                client.suspend("kp1", client.time().now().plusMillis(300));
                long until = System.nanoTime() + SETTLE.toNanos();
                while (client.status("kp1").vms().get(0).phase() != VmPhase.CAPTURED) {
                    assertThat(System.nanoTime()).as("the VM is captured").isLessThan(until);
                    Thread.sleep(50);
                }
                assertThat(client.vm("hpc_vm1").state()).isNotEqualTo("running");
                first.kill(); // SIGKILL between the stop and the resume: no watchdog, no abort
            }
            long roundAtKill = DirtierLog.lastRoundReached(Files.readString(pod.console()));

            try (AgentProcess second = AgentProcess.start("n1", agentWork, args)) {
                AgentClient client = new AgentClient("n1", second.uri(), token.header(), SETTLE);
                awaitState(client, "running");
                LauncherPods.awaitRound(pod.console(), roundAtKill + 3); // the guest itself runs on
                try (Stream<Path> left = Files.list(agentWork.resolve("paused"))) {
                    assertThat(left.filter(p -> p.toString().endsWith(".json")).toList()).as("pause journal entries left").isEmpty();
                }
            }
        }
    }

    private static void awaitState(AgentClient client, String state) throws Exception {
        long until = System.nanoTime() + SETTLE.toNanos();
        String seen = "not found";
        while (true) {
            var vm = client.vms().stream().filter(v -> v.name().equals("hpc_vm1")).findFirst();
            seen = vm.map(v -> v.state()).orElse("not found");
            if (seen.equals(state)) {
                return;
            }
            assertThat(System.nanoTime()).as("hpc_vm1 is %s (it is %s)", state, seen).isLessThan(until);
            Thread.sleep(100);
        }
    }
}
