package io.mekha.agent;

import static io.mekha.agent.api.VmPhase.ABORTED;
import static io.mekha.agent.api.VmPhase.CAPTURED;
import static io.mekha.agent.api.VmPhase.FAILED;
import static io.mekha.agent.api.VmPhase.LIVE;
import static io.mekha.agent.api.VmPhase.LIVE_DONE;
import static io.mekha.agent.api.VmPhase.PREPARED;
import static io.mekha.agent.api.VmPhase.RESUMED;
import static io.mekha.agent.api.VmPhase.SUSPENDED;
import static io.mekha.agent.api.VmPhase.SUSPENDING;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.ErrorKind;
import io.mekha.agent.transfer.LiveEndingCondition.Reason;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's exact phase sequences, with fake transfers the test drives (no QEMU): the whole protocol, an abort while
 * the capture waits, a capture that fails by itself, a live stage QEMU finished early, the pause watchdog, and the
 * barrier a resume must respect. The phase table ({@code VmPhase}) is what keeps a terminal phase terminal.
 */
@Tag("fast")
@Tag("faults")
class CheckpointPhasesTest {

    @TempDir
    Path work;

    private static PrepareRequest mtd(List<String> vms, Duration pauseDeadline) {
        return new PrepareRequest(vms, "MTD", null, null, pauseDeadline, Map.of(), null);
    }

    @Test
    void aVmGoesThroughEveryPhaseOnceInOrderAndTheTransferHearsEachStepInOrder() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1")) {
            node.agent.prepare("cp", mtd(List.of("vm1"), null));
            node.transfer("vm1").endLiveStage(Reason.DIRTY_SET_STOPPED_SHRINKING);
            node.awaitAll("cp", LIVE_DONE);
            node.agent.suspend("cp", Instant.now());
            node.awaitAll("cp", SUSPENDED);
            node.transfer("vm1").capture();
            node.awaitAll("cp", CAPTURED);
            node.agent.resume("cp", Instant.now());
            CheckpointStatus done = node.awaitAll("cp", RESUMED);

            assertThat(node.agent.phaseHistory("cp", "vm1")).containsExactly(PREPARED, LIVE, LIVE_DONE, SUSPENDING, SUSPENDED, CAPTURED, RESUMED);
            assertThat(node.transfer("vm1").calls).containsExactly("startLive", "pollLive:DIRTY_SET_STOPPED_SHRINKING", "holdLive", "stop",
                    "completeSuspend", "awaitCaptured", "sendResume", "completeResume", "figures");
            assertThat(done.vms().get(0).level0Held()).isTrue();
            assertThat(done.vms().get(0).error()).isNull();
        }
    }

    @Test
    void anAbortWhileTheCaptureWaitsStaysAbortedWhenTheCancelledCaptureThenFails() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1", "vm2")) {
            node.agent.prepare("cp", mtd(List.of("vm1", "vm2"), null));
            node.transfer("vm1").endLiveStage(Reason.SMALL_REMAINDER);
            node.transfer("vm2").endLiveStage(Reason.SMALL_REMAINDER);
            node.awaitAll("cp", LIVE_DONE);
            node.agent.suspend("cp", Instant.now());
            node.transfer("vm1").capture();
            node.await("cp", s -> s.vms().stream().anyMatch(v -> v.vm().equals("vm1") && v.phase() == CAPTURED)
                    && s.vms().stream().anyMatch(v -> v.vm().equals("vm2") && v.phase() == SUSPENDED), "vm1 captured, vm2 capturing");

            node.agent.abort("cp", "the coordinator gave up");
            // vm2's capture now fails (the abort cancelled its migration): that must not turn ABORTED into FAILED
            CheckpointStatus after = node.awaitAll("cp", ABORTED);
            assertThat(node.agent.phaseHistory("cp", "vm2")).containsExactly(PREPARED, LIVE, LIVE_DONE, SUSPENDING, SUSPENDED, ABORTED);
            assertThat(node.agent.phaseHistory("cp", "vm1")).containsExactly(PREPARED, LIVE, LIVE_DONE, SUSPENDING, SUSPENDED, CAPTURED, ABORTED);
            assertThat(after.vms()).allSatisfy(v -> assertThat(v.error()).isEqualTo("aborted: the coordinator gave up"));
            assertThat(node.transfer("vm1").aborted()).as("vm1 resumed and its copy dropped").isTrue();
            assertThat(node.transfer("vm2").aborted()).isTrue();
            // nothing moves a terminal phase: a late resume is refused and the history does not grow
            assertThatThrownBy(() -> node.agent.resume("cp", Instant.now())).isInstanceOfSatisfying(AgentException.class,
                    e -> assertThat(e.kind()).isEqualTo(ErrorKind.CONFLICT));
            assertThat(node.agent.phaseHistory("cp", "vm2")).hasSize(6);
        }
    }

    @Test
    void aCaptureThatFailsByItselfEndsFailedWithItsReasonAndResumesTheVm() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1")) {
            node.agent.prepare("cp", mtd(List.of("vm1"), null));
            node.transfer("vm1").endLiveStage(Reason.TIME_BOUND);
            node.awaitAll("cp", LIVE_DONE);
            node.agent.suspend("cp", Instant.now());
            node.awaitAll("cp", SUSPENDED);
            node.transfer("vm1").failCapture("the shadow's QEMU exited");
            CheckpointStatus failed = node.awaitAll("cp", FAILED);

            assertThat(failed.vms().get(0).error()).contains("suspend/capture failed: the shadow's QEMU exited");
            assertThat(node.agent.phaseHistory("cp", "vm1")).containsExactly(PREPARED, LIVE, LIVE_DONE, SUSPENDING, SUSPENDED, FAILED);
            assertThat(node.transfer("vm1").calls).endsWith("awaitCaptured", "abort");
            // a later abort (the coordinator hearing of it) keeps the first reason
            node.agent.abort("cp", "VM failed elsewhere");
            assertThat(node.agent.status("cp").vms().get(0).phase()).isEqualTo(FAILED);
            assertThat(node.agent.status("cp").vms().get(0).error()).contains("the shadow's QEMU exited");
        }
    }

    @Test
    void aLiveStageThatQemuFinishedByItselfStartsOverWithAFreshTransfer() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1")) {
            node.agent.prepare("cp", mtd(List.of("vm1"), null));
            FakeTransfer first = node.transfer("vm1");
            first.endLiveStage(Reason.COMPLETED_BY_QEMU);
            node.await("cp", s -> s.vms().get(0).liveRestarts() == 1 && node.transfers.get("vm1").size() == 2
                    && node.agent.phaseHistory("cp", "vm1").size() == 3, "one live restart");
            FakeTransfer second = node.transfer("vm1");
            assertThat(second).isNotSameAs(first);
            assertThat(first.calls).containsExactly("startLive", "pollLive:COMPLETED_BY_QEMU", "stoppedByQemuAt", "abort");
            second.endLiveStage(Reason.DIRTY_SET_STOPPED_SHRINKING);
            node.awaitAll("cp", LIVE_DONE);
            assertThat(node.agent.phaseHistory("cp", "vm1")).containsExactly(PREPARED, LIVE, LIVE, LIVE_DONE);
            node.agent.abort("cp", "test over");
        }
    }

    @Test
    void withNoResumeWithinThePauseDeadlineTheWatchdogResumesEveryVmItPaused() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1")) {
            node.agent.prepare("cp", mtd(List.of("vm1"), Duration.ofMillis(300)));
            node.transfer("vm1").endLiveStage(Reason.SMALL_REMAINDER);
            node.awaitAll("cp", LIVE_DONE);
            node.agent.suspend("cp", Instant.now());
            node.transfer("vm1").capture();
            node.awaitAll("cp", CAPTURED);
            // no resume comes
            CheckpointStatus aborted = node.awaitAll("cp", ABORTED);
            assertThat(aborted.vms().get(0).error()).contains("no resume from the coordinator within PT0.3S");
            assertThat(node.transfer("vm1").calls).contains("abort");
        }
    }

    @Test
    void aResumeBeforeEveryVmIsCapturedIsRefusedAndPausesNothingMore() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1", "vm2")) {
            node.agent.prepare("cp", mtd(List.of("vm1", "vm2"), null));
            node.transfer("vm1").endLiveStage(Reason.SMALL_REMAINDER);
            node.transfer("vm2").endLiveStage(Reason.SMALL_REMAINDER);
            node.awaitAll("cp", LIVE_DONE);
            node.agent.suspend("cp", Instant.now());
            node.transfer("vm1").capture();
            node.await("cp", s -> s.vms().stream().anyMatch(v -> v.phase() == CAPTURED), "one VM captured");
            assertThatThrownBy(() -> node.agent.resume("cp", Instant.now())).isInstanceOfSatisfying(AgentException.class, e -> {
                assertThat(e.kind()).isEqualTo(ErrorKind.CONFLICT);
                assertThat(e.getMessage()).contains("cannot resume before every VM").contains("vm2=SUSPENDED");
            });
            assertThat(node.transfer("vm1").calls).doesNotContain("sendResume");
            node.agent.abort("cp", "test over");
        }
    }

    @Test
    void aSecondCheckpointOfALockedVmIsRefusedAndLocksNothing() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1", "vm2")) {
            node.agent.prepare("cp1", mtd(List.of("vm2"), null));
            assertThatThrownBy(() -> node.agent.prepare("cp2", mtd(List.of("vm1", "vm2"), null)))
                    .isInstanceOfSatisfying(AgentException.class, e -> {
                        assertThat(e.kind()).isEqualTo(ErrorKind.CONFLICT);
                        assertThat(e.getMessage()).contains("VM 'vm2' is already in checkpoint cp1");
                    });
            // vm1 was not left locked by the refused checkpoint
            node.agent.prepare("cp3", mtd(List.of("vm1"), null));
            node.agent.abort("cp1", "test over");
            node.agent.abort("cp3", "test over");
        }
    }
}
