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

    /**
     * The same fault during a restore: a VMI's new QEMU, fed the checkpoint's held stream and paused at the cut, whose
     * restart is armed (every node was told Tr) when the agent is SIGKILLed before Tr. Once armed everywhere a restart
     * goes ahead; before the journal held armed restarts, nobody resumed that copy and the restored VM stayed paused for
     * good. The next agent on the node resumes it at Tr, not before, and the guest goes on from the cut exactly.
     */
    @org.junit.jupiter.api.Test
    void aRestoredCopyArmedByAnAgentKilledBeforeTrRunsAtTrUnderTheNextAgent() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mount namespaces for the pods' emptyDirs need root");
        BearerToken token = BearerToken.random();
        Path tokenFile = work.resolve("agent.token");
        token.write(tokenFile);
        Path agentWork = Files.createDirectories(work.resolve("agent"));
        List<String> args = List.of("--token-file", tokenFile.toString(), "--runtime", "kubevirt");

        try (LauncherPods pods = new LauncherPods(work)) {
            LauncherPods.Launcher crashed = pods.launch("vm1-a", KubeVirtAgentTest.NS, TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 200"), "");
            LauncherPods.awaitRound(crashed.console(), 3);
            LauncherPods.Launcher restored;
            java.util.Map<String, java.util.TreeMap<Long, String>> before = new java.util.HashMap<>();
            long cutRound;
            java.time.Instant tr;
            try (AgentProcess first = AgentProcess.start("n1", agentWork, args)) {
                AgentClient client = new AgentClient("n1", first.uri(), token.header(), SETTLE);
                awaitState(client, "running");
                pods.nameTo(client);
                try (io.mekha.protocol.Coordinator coordinator = new io.mekha.protocol.Coordinator(List.of(client), java.time.Clock.systemUTC())) {
                    coordinator.checkpoint("kr1", List.of("hpc_vm1"), io.mekha.protocol.CheckpointOptions.defaults(), System.out::println);
                }
                cutRound = DirtierLog.lastRoundReached(Files.readString(crashed.console()));
                LauncherPods.awaitRound(crashed.console(), cutRound + 4);
                LauncherPods.crash(crashed);
                before.put("hpc_vm1", DirtierLog.parse(Files.readAllLines(crashed.console())));

                restored = pods.launch("vm1-b", KubeVirtAgentTest.NS, TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 200"), KubeVirtAgentTest.RESTORE);
                assertThat(client.loadLevel0("kr1", null, Duration.ofMinutes(2))).containsExactly("hpc_vm1");
                client.restart("kr1", new io.mekha.agent.api.AgentDtos.RestartRequest(null, null, null));
                // Tr far enough ahead for the next agent's JVM to come up first
                tr = client.time().now().plusSeconds(10);
                client.armRestart("kr1", tr);
                first.kill();
            }
            long restoredPid = restored.process().pid();
            try (AgentProcess second = AgentProcess.start("n1", agentWork, args)) {
                java.time.Instant up = java.time.Instant.now();
                AgentClient client = new AgentClient("n1", second.uri(), token.header(), SETTLE);
                java.time.Instant firstSeenRunning = null;
                long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (firstSeenRunning == null) {
                    assertThat(System.nanoTime()).as("the restored VM runs again").isLessThan(until);
                    var vm = client.vms().stream().filter(v -> v.name().equals("hpc_vm1")).findFirst();
                    if (vm.isPresent() && vm.get().state().equals("running")) {
                        firstSeenRunning = java.time.Instant.now();
                        assertThat(vm.get().pid()).as("the restored pod's QEMU").isEqualTo(restoredPid);
                    }
                    Thread.sleep(20);
                }
                if (up.isBefore(tr)) {
                    assertThat(firstSeenRunning).as("resumed at Tr (%s), not before: the other nodes' copies resume then", tr)
                            .isAfterOrEqualTo(tr.minusMillis(50));
                } else {
                    System.out.println("the next agent came up " + Duration.between(tr, up).toMillis() + " ms after Tr: resumed late, as it must");
                }
                KubeVirtAgentTest.assertContinuesExactly(java.util.Map.of("hpc_vm1", restored), before, java.util.Map.of("hpc_vm1", cutRound));
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
