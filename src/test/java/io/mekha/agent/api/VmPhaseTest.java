package io.mekha.agent.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The table of phase moves: forward only, a live stage may start over, and nothing leaves a terminal phase. */
@Tag("fast")
class VmPhaseTest {

    @Test
    void noPhaseLeavesATerminalOne() {
        for (VmPhase terminal : List.of(VmPhase.RESUMED, VmPhase.FAILED, VmPhase.ABORTED)) {
            assertThat(terminal.terminal()).isTrue();
            for (VmPhase next : VmPhase.values()) {
                assertThat(terminal.canMoveTo(next)).as("%s -> %s", terminal, next).isFalse();
            }
        }
    }

    @Test
    void everyLivePhaseCanFailOrBeAbortedAndNoneCanJumpToResumedButCapturedOrStreaming() {
        for (VmPhase phase : VmPhase.values()) {
            if (phase.terminal()) {
                continue;
            }
            assertThat(phase.canMoveTo(VmPhase.FAILED)).as("%s -> FAILED", phase).isTrue();
            assertThat(phase.canMoveTo(VmPhase.ABORTED)).as("%s -> ABORTED", phase).isTrue();
            assertThat(phase.canMoveTo(VmPhase.RESUMED)).as("%s -> RESUMED", phase).isEqualTo(phase == VmPhase.CAPTURED || phase == VmPhase.STREAMING);
            // only a captured VM runs again: streaming comes after the cut's resume, never before the capture
            assertThat(phase.canMoveTo(VmPhase.STREAMING)).as("%s -> STREAMING", phase).isEqualTo(phase == VmPhase.CAPTURED);
        }
    }

    @Test
    void aBackgroundSnapshotsPathStreamsAfterTheResumeAndRunsAgainFromThen() {
        assertThat(VmPhase.CAPTURED.canMoveTo(VmPhase.STREAMING)).isTrue();
        assertThat(VmPhase.STREAMING.canMoveTo(VmPhase.RESUMED)).isTrue();
        assertThat(VmPhase.STREAMING.canMoveTo(VmPhase.CAPTURED)).isFalse();
        assertThat(VmPhase.STREAMING.terminal()).isFalse();
        for (VmPhase phase : VmPhase.values()) {
            assertThat(phase.runsAgain()).as("%s runs again", phase).isEqualTo(phase == VmPhase.STREAMING || phase == VmPhase.RESUMED);
        }
    }

    @Test
    void theProtocolsPathIsAllowedStepByStepAndNothingGoesBackPastTheStop() {
        List<VmPhase> path = List.of(VmPhase.PREPARED, VmPhase.LIVE, VmPhase.LIVE_DONE, VmPhase.SUSPENDING, VmPhase.SUSPENDED,
                VmPhase.CAPTURED, VmPhase.RESUMED);
        for (int i = 0; i + 1 < path.size(); i++) {
            assertThat(path.get(i).canMoveTo(path.get(i + 1))).as("%s -> %s", path.get(i), path.get(i + 1)).isTrue();
        }
        // once the stop is scheduled the live stage is over for good
        for (VmPhase stopped : EnumSet.of(VmPhase.SUSPENDING, VmPhase.SUSPENDED, VmPhase.CAPTURED)) {
            for (VmPhase earlier : EnumSet.of(VmPhase.PREPARED, VmPhase.LIVE, VmPhase.LIVE_DONE)) {
                assertThat(stopped.canMoveTo(earlier)).as("%s -> %s", stopped, earlier).isFalse();
            }
        }
        // a live stage that QEMU finished by itself starts over; a stop is never skipped
        assertThat(VmPhase.LIVE_DONE.canMoveTo(VmPhase.LIVE)).isTrue();
        assertThat(VmPhase.LIVE.canMoveTo(VmPhase.SUSPENDED)).isFalse();
        assertThat(VmPhase.SUSPENDING.canMoveTo(VmPhase.CAPTURED)).isFalse();
        assertThat(VmPhase.PREPARED.canMoveTo(VmPhase.SUSPENDING)).isFalse();
    }
}
