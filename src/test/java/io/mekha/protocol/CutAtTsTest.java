package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.local.GuestClockTrace;
import io.mekha.local.GuestImage;
import io.mekha.local.VcWorkload;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cut at Ts on the workload that broke it in wave 1: vm1 rewrites 96 MiB while vm2 and vm3 pass
 * small messages and barely dirty memory (QEMU then finishes a live stage by itself whenever a pass
 * finds nothing dirty, hundreds of milliseconds before Ts). With the switchover held, MTD never ends
 * early: every VM stops at Ts, pauses Tr - Ts, and the guests' own clocks (clockprobe lines, read as
 * they appear) keep their distances across the checkpoint and across a restart from it.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class CutAtTsTest {
    private static final int STEPS = 100_000;
    private static final Duration RUN = Duration.ofMinutes(3);
    /**
     * Lines each clock offset is read from, the least delayed of them counting: a second of the probe. A line can come
     * out late (its guest was not scheduled between reading the clock and writing the line, a busy console), never
     * early; within a second some line comes out at once.
     */
    private static final int LINES = 50;
    /** After a resume the guests catch up (the ring's retransmits, a busy console): their lines are read from this on. */
    private static final Duration SETTLE = Duration.ofMillis(200);
    /** How far two offsets read through the clock probes can be off from each other (seen up to 2.2 ms on two busy cores). */
    private static final Duration PROBE_ERROR = Duration.ofMillis(4);

    @TempDir
    Path work;

    @Test
    void aVmThatBarelyDirtiesMemoryBesideABusyOneStopsAtTsAndEveryGuestClockKeepsItsDistanceAcrossCheckpointAndRestart()
            throws Exception {
        VcWorkload workload = VcWorkload.MIXED;
        try (TestCluster vc = new TestCluster(work, port -> workload.specs(GuestImage.locate().requireBuilt(), port, 3, 256, STEPS))) {
            vc.bootAll();
            awaitChatter(vc, 60);
            Map<String, GuestClockTrace> traces = new LinkedHashMap<>();
            for (String vm : vc.vmNames()) {
                traces.put(vm, GuestClockTrace.follow(Path.of(vc.info(vm).consolePath())));
            }
            try {
                traces.values().iterator().next().awaitAfter(Instant.now(), LINES + 5, RUN); // half a second of clocks first

                CheckpointReport cut = vc.coordinator.checkpoint("cp", vc.vmNames(), CheckpointOptions.defaults(), System.out::println);
                cut.vms().forEach(v -> System.out.println(v.vm() + " stop sent " + v.stopSentAt() + " stopped " + v.stoppedAt() + " captured "
                        + v.capturedAt() + " resumed "
                        + v.resumedAt() + " restarts " + v.liveRestarts() + " " + v.figures()));
                System.out.printf("Ts %s Tr %s suspend skew %s resume skew %s%n", cut.suspendAt(), cut.resumeAt(), cut.suspendSkew(),
                        cut.resumeSkew());
                for (VmCheckpointReport v : cut.vms()) {
                    assertThat(v.liveRestarts()).as("%s: QEMU never ended its live stage by itself", v.vm()).isZero();
                    assertThat(v.figures().liveEnd()).as("%s's live stage end", v.vm()).isNotEqualTo("QEMU completed");
                    // QEMU's own STOP event: never before Ts (a VM QEMU finished early stops hundreds of ms before it), and
                    // within a few ms after it (here three busy TCG guests share two cores: the agent's cut thread and
                    // QEMU's main loop wait for a CPU like everyone else, up to tens of ms; docs/cut-at-ts.md)
                    assertThat(Duration.between(cut.suspendAt(), v.stoppedAt())).as("%s stopped at Ts (STOP event - Ts)", v.vm())
                            .isBetween(Duration.ofMillis(-2), Duration.ofMillis(60));
                }
                assertThat(cut.barrierHeld()).isTrue();

                // the guests' own clocks after the checkpoint: each stood still from its stop to its resume, all for the same time
                Map<String, Duration> before = new LinkedHashMap<>();
                Map<String, Duration> afterCut = new LinkedHashMap<>();
                for (String vm : vc.vmNames()) {
                    before.put(vm, traces.get(vm).offsetBefore(cut.suspendAt(), LINES));
                    afterCut.put(vm, GuestClockTrace.offset(traces.get(vm).awaitAfter(cut.resumeAt().plus(SETTLE), LINES, RUN)));
                }
                // each VM resumes as late after Tr as its clock froze after Ts, so that the pauses differ only by how late each
                // QEMU acted on its cont (on two shared cores, up to a few ms for a busy VM's main loop; docs/cut-at-ts.md)
                System.out.printf("pause spread %s (suspend skew %s, resume skew %s)%n", cut.pauseSpread(), cut.suspendSkew(), cut.resumeSkew());
                for (VmCheckpointReport v : cut.vms()) {
                    System.out.printf("%s: froze %s after the stop's send (STOP event %s after it), stood still %s, lost %s by its own clock%n",
                            v.vm(), Duration.between(v.stopSentAt(), v.frozenAt()), Duration.between(v.stopSentAt(), v.stoppedAt()),
                            Duration.between(v.frozenAt(), v.resumedAt()), before.get(v.vm()).minus(afterCut.get(v.vm())));
                    // strictly after the send: QEMU's run-state trace was read (without it the freeze is the send itself)
                    assertThat(v.frozenAt()).as("%s froze after the stop's send and before QEMU's STOP event", v.vm())
                            .isAfter(v.stopSentAt()).isBeforeOrEqualTo(v.stoppedAt().plusMillis(1)); // (STOP read through a clock offset)
                }
                // equal pauses: a VM whose stop QEMU took late resumes as late, so the distances move by what QEMU's conts
                // spread, never by how late a stop came (up to 18 ms on busy shared cores)
                assertDistancesKept("after the checkpoint", before, afterCut, cut.resumeSkew().plusMillis(5));
                // and Mekha knows what each guest lost: its freeze (QEMU's run-state trace) to its RESUME event, up to the
                // clock probe's own error (the least delayed of 50 console lines, on each side)
                assertDistancesKept("after the checkpoint, against Mekha's own pause spread", before, afterCut, cut.pauseSpread().plus(PROBE_ERROR));

                // the VC runs on, every VM crashes, and the whole VC restarts from memory
                Thread.sleep(1000);
                Map<String, List<String>> consolesBefore = new LinkedHashMap<>();
                for (String vm : vc.vmNames()) {
                    ProcessHandle.of(vc.info(vm).pid()).ifPresent(p -> {
                        p.destroyForcibly();
                        p.onExit().join();
                    });
                }
                for (String vm : vc.vmNames()) {
                    consolesBefore.put(vm, vc.console(vm));
                }
                RestartReport restart = vc.coordinator.restart("cp", System.out::println);
                System.out.println("restart resume skew " + restart.resumeSkew() + " " + restart.clocks());
                for (String vm : vc.vmNames()) {
                    traces.get(vm).switchTo(Path.of(vc.info(vm).consolePath()));
                }
                Map<String, Duration> afterRestart = new LinkedHashMap<>();
                for (String vm : vc.vmNames()) {
                    afterRestart.put(vm, GuestClockTrace.offset(traces.get(vm).awaitAfter(restart.resumeAt().plus(SETTLE), LINES, RUN)));
                }
                System.out.printf("restart: lost-time spread %s, resume skew %s%n", restart.lostSpread(), restart.resumeSkew());
                Duration restartTolerance = restart.resumeSkew().plusMillis(5);
                assertDistancesKept("after the restart", before, afterRestart, restartTolerance);
                // each guest lost from its freeze at the cut to its RESUME here, as Mekha counts it
                assertDistancesKept("after the restart, against Mekha's own lost-time spread", before, afterRestart,
                        restart.lostSpread().plus(PROBE_ERROR));

                // Virtual: each guest's clock continues from its cut, as if the time between never happened
                for (VmCheckpointReport v : cut.vms()) {
                    Instant resumedAgain = restart.resumedAt().get(v.vm());
                    Duration expected = before.get(v.vm()).minus(Duration.between(v.frozenAt(), resumedAgain));
                    Duration jump = afterRestart.get(v.vm()).minus(expected);
                    System.out.printf("%s: guest clock jump across the restart %s (its own clock)%n", v.vm(), jump);
                    assertThat(jump.abs()).as("%s: the guest's clock after the restart continues from its cut", v.vm())
                            .isLessThanOrEqualTo(restart.resumeSkew().plusMillis(10));
                    Duration reported = restart.clocks().get(v.vm()).jump();
                    assertThat(reported).as("%s: the restart report's clock jump (read through its guest agent)", v.vm()).isNotNull();
                    assertThat(reported.abs()).as("%s: reported jump", v.vm()).isLessThanOrEqualTo(restart.resumeSkew().plusMillis(10));
                }

                // and the work goes on exactly: the ring's sums, the dirtier's hashes
                awaitChatter(vc, lastStep(consolesBefore) + 50);
                Map<String, List<String>> consolesAfter = new LinkedHashMap<>();
                for (String vm : vc.vmNames()) {
                    consolesAfter.put(vm, vc.console(vm));
                }
                assertThat(workload.mismatches(consolesBefore, consolesAfter, 3, STEPS)).isEmpty();
                vc.coordinator.discard("cp");
            } finally {
                traces.values().forEach(GuestClockTrace::close);
            }
        }
    }

    /** Every VM lost the same time, so that the distances between the guests' clocks are those before. */
    private static void assertDistancesKept(String when, Map<String, Duration> before, Map<String, Duration> after, Duration tolerance) {
        System.out.printf("%s: offsets before %s, after %s (tolerance %s)%n", when, before, after, tolerance);
        List<String> vms = List.copyOf(before.keySet());
        for (int i = 0; i < vms.size(); i++) {
            for (int j = i + 1; j < vms.size(); j++) {
                String a = vms.get(i);
                String b = vms.get(j);
                Duration distanceBefore = before.get(a).minus(before.get(b));
                Duration distanceAfter = after.get(a).minus(after.get(b));
                assertThat(distanceAfter.minus(distanceBefore).abs()).as("%s: the distance between %s's and %s's clocks moved", when, a, b)
                        .isLessThanOrEqualTo(tolerance);
            }
        }
    }

    /** Waits until the chatty ring (vm2 and vm3) printed step {@code step}. */
    private static void awaitChatter(TestCluster vc, long step) throws Exception {
        long deadline = System.nanoTime() + RUN.toNanos();
        while (lastStep(Map.of("vm2", vc.console("vm2"), "vm3", vc.console("vm3"))) < step) {
            assertThat(System.nanoTime()).as("the chatty ring reached step %d", step).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    private static long lastStep(Map<String, List<String>> consoles) {
        long min = Long.MAX_VALUE;
        for (var e : consoles.entrySet()) {
            if (e.getKey().equals("vm1")) {
                continue;
            }
            min = Math.min(min, io.mekha.local.RingReference.lastStepReached(String.join("\n", e.getValue())));
        }
        return min == Long.MAX_VALUE ? 0 : min;
    }
}
