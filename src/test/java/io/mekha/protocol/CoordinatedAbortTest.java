package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Failures in the middle of the live stage: a source QEMU, a shadow QEMU or a whole agent dies.
 * The checkpoint is reported failed with the reason, every surviving VM runs, and no shadow is left.
 */
@Tag("qemu")
@Tag("faults")
@ExtendWith(NoQemuLeftBehind.class)
class CoordinatedAbortTest {

    @TempDir
    Path work;

    /** Capped transfers keep every VM in its live stage for tens of seconds: time to break something. */
    private static CheckpointOptions slowLiveStage() {
        long cap = 2L << 20;
        return CheckpointOptions.defaults()
                .withLiveBounds(Duration.ofSeconds(90), Duration.ofSeconds(90))
                .withBandwidthLimits(Map.of("vm1", cap, "vm2", cap, "vm3", cap));
    }

    @Test
    void killingASourceQemuAbortsTheCheckpointAndTheOtherVmsRunOn() throws Exception {
        try (TestCluster vc = new TestCluster(work, 100000, 50)) {
            vc.bootAll();
            CompletableFuture<CheckpointReport> checkpoint = startCheckpoint(vc);
            awaitLiveEverywhere(vc);
            ProcessHandle.of(vc.info("vm1").pid()).orElseThrow().destroyForcibly();

            assertFailure(checkpoint, "vm1", "FAILED", "exited during the live stage");
            assertRunning(vc, List.of("vm2", "vm3"));
            assertNoShadows();
        }
    }

    @Test
    void killingAShadowAbortsTheCheckpointAndEveryVmRunsOn() throws Exception {
        try (TestCluster vc = new TestCluster(work, 100000, 50)) {
            vc.bootAll();
            CompletableFuture<CheckpointReport> checkpoint = startCheckpoint(vc);
            awaitLiveEverywhere(vc);
            ProcessHandle shadow = shadowsOf("vm2").get(0);
            shadow.destroyForcibly();

            assertFailure(checkpoint, "vm2", "FAILED", "shadow");
            assertRunning(vc, List.of("vm1", "vm2", "vm3"));
            assertNoShadows();
        }
    }

    @Test
    void killingAnAgentAbortsTheCheckpointAndTheVmsOfTheOtherAgentRunOn() throws Exception {
        try (TestCluster vc = new TestCluster(work, 100000, 50)) {
            vc.bootAll();
            CompletableFuture<CheckpointReport> checkpoint = startCheckpoint(vc);
            awaitLiveEverywhere(vc);
            vc.agent2.kill(); // node n2 and its VM vm3 die with it

            assertFailure(checkpoint, "n2", "unreachable");
            assertRunning(vc, List.of("vm1", "vm2"));
            assertNoShadows();
        }
    }

    private static CompletableFuture<CheckpointReport> startCheckpoint(TestCluster vc) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return vc.coordinator.checkpoint("cp1", vc.vmNames(), slowLiveStage(), System.out::println);
            } catch (Exception e) {
                throw new CompletionException(e);
            }
        });
    }

    private static void awaitLiveEverywhere(TestCluster vc) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            try {
                CheckpointStatus s1 = vc.client1.status("cp1");
                CheckpointStatus s2 = vc.client2.status("cp1");
                if (s1.vms().size() == 2 && s2.vms().size() == 1
                        && s1.vms().stream().allMatch(v -> v.phase() == VmPhase.LIVE)
                        && s2.vms().stream().allMatch(v -> v.phase() == VmPhase.LIVE)) {
                    Thread.sleep(500); // well inside the live stage
                    return;
                }
            } catch (AgentCallException notYet) {
                // the checkpoint is still being prepared
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the live stage did not start on every VM");
    }

    private static void assertFailure(CompletableFuture<CheckpointReport> checkpoint, String... words) throws Exception {
        try {
            CheckpointReport report = checkpoint.get(120, TimeUnit.SECONDS);
            throw new AssertionError("the checkpoint succeeded although it should have failed: " + report);
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable cause = e.getCause() instanceof CompletionException c ? c.getCause() : e.getCause();
            assertThat(cause).isInstanceOf(CheckpointFailedException.class);
            assertThat(cause.getMessage()).contains("aborted").contains(words);
            System.out.println("reported: " + cause.getMessage());
        }
    }

    private static void assertRunning(TestCluster vc, List<String> vms) throws Exception {
        for (String vm : vms) {
            String state = vc.info(vm).state();
            for (int i = 0; i < 50 && !state.equals("running"); i++) {
                Thread.sleep(100);
                state = vc.info(vm).state();
            }
            assertThat(state).as("%s runs after the abort", vm).isEqualTo("running");
            assertThat(vc.info(vm).checkpoint()).as("%s is no longer locked by the checkpoint", vm).isNull();
        }
    }

    private static List<ProcessHandle> shadowsOf(String vm) {
        return NoQemuLeftBehind.qemuDescendants().stream()
                .filter(p -> p.info().commandLine().orElse("").contains("/" + vm + ".shadow-"))
                .toList();
    }

    private static void assertNoShadows() throws InterruptedException {
        List<ProcessHandle> left = List.of();
        for (int i = 0; i < 50; i++) {
            left = NoQemuLeftBehind.qemuDescendants().stream()
                    .filter(p -> p.info().commandLine().orElse("").contains(".shadow-"))
                    .toList();
            if (left.isEmpty()) {
                return;
            }
            Thread.sleep(100);
        }
        assertThat(left).as("shadow QEMUs left after the abort").isEmpty();
    }
}
