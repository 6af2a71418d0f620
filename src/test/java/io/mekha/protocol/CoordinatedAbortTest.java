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

    /**
     * A background snapshot's copy that breaks after the resume, while the VC runs and vm2's RAM streams on: vm2's shadow
     * is frozen (SIGSTOP) once the checkpoint is prepared, so that its stream stalls after the first pages (QEMU's device
     * state and first pages fit in the socket's buffer: the cut is armed, every VM resumes), and is killed once vm2 is
     * STREAMING. The checkpoint fails with the reason, every VM runs, and no level holds it.
     */
    @Test
    void aBackgroundCopyWhoseTargetDiesAfterTheResumeFailsTheCheckpointAndEveryVmRunsOn() throws Exception {
        backgroundCopyBreaks(false);
    }

    /**
     * The same copy stalled for good (its target frozen, never killed): a guest write to a page not yet copied waits for
     * the copy, so a stalled target stalls the guest; the completion timeout bounds it, the agent cancels the copy, and
     * every VM runs again.
     */
    @Test
    void aBackgroundCopyThatStallsFailsTheCheckpointAtTheCompletionTimeoutAndEveryVmRunsOn() throws Exception {
        backgroundCopyBreaks(true);
    }

    private void backgroundCopyBreaks(boolean stallForGood) throws Exception {
        try (TestCluster vc = new TestCluster(work, 100000, 50);
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), java.time.Clock.systemUTC())) {
            vc.bootAll();
            CompletableFuture<CheckpointReport> checkpoint = startCheckpoint(vc, CheckpointOptions.defaults()
                    .withMode(io.mekha.model.TransferMode.BACKGROUND_SNAPSHOT).withCompletionTimeout(Duration.ofSeconds(15)));
            awaitPhase(vc.client1, VmPhase.LIVE_DONE, VmPhase.SUSPENDING);
            ProcessHandle shadow = shadowsOf("vm2").get(0);
            signal("STOP", shadow);
            try {
                awaitPhase(vc.client1, VmPhase.STREAMING);
            } finally {
                if (!stallForGood) {
                    shadow.destroyForcibly();
                }
            }

            assertFailure(checkpoint, "vm2", "FAILED");
            assertRunning(vc, List.of("vm1", "vm2", "vm3"));
            assertNoShadows();
            assertThat(storage.holdings("ring", null, Map.of("cp1", java.time.Instant.now())))
                    .as("no level holds the failed checkpoint").allSatisfy(h -> assertThat(h.complete()).isEmpty());
            shadow.destroyForcibly();
        }
    }

    /** Until vm2 (on node n1) is in one of {@code phases}: heard by long polls, no fixed sleep. */
    private static void awaitPhase(AgentClient agent, VmPhase... phases) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        List<VmPhase> wanted = List.of(phases);
        while (System.nanoTime() < deadline) {
            try {
                CheckpointStatus status = agent.status("cp1");
                long version = status.version();
                while (System.nanoTime() < deadline) {
                    if (status.vms().stream().anyMatch(v -> v.vm().equals("vm2") && wanted.contains(v.phase()))) {
                        return;
                    }
                    status = agent.awaitStatus("cp1", version, Duration.ofSeconds(5));
                    version = status.version();
                }
            } catch (AgentCallException notYet) {
                Thread.sleep(20); // the checkpoint is still being prepared
            }
        }
        throw new AssertionError("vm2 did not reach " + wanted);
    }

    private static void signal(String name, ProcessHandle process) throws Exception {
        assertThat(new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start().waitFor()).isZero();
    }

    private static CompletableFuture<CheckpointReport> startCheckpoint(TestCluster vc) {
        return startCheckpoint(vc, slowLiveStage());
    }

    private static CompletableFuture<CheckpointReport> startCheckpoint(TestCluster vc, CheckpointOptions options) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return vc.coordinator.checkpoint("cp1", vc.vmNames(), options, System.out::println);
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
