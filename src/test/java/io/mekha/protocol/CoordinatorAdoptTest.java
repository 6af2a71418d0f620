package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A coordinator that dies after the cut, with every VM paused and captured: another coordinator
 * picks the checkpoint up from the agents alone, resumes every VM together, and the checkpoint is
 * whole (the VC later restarts from it exactly). This is what a restarted operator does.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class CoordinatorAdoptTest {
    static final Duration RUN = Duration.ofMinutes(3);

    /** Stands in for the death of the coordinator's process: nothing after it runs, not even the abort. */
    static final class CoordinatorDied extends Error {
        CoordinatorDied() {
            super("the coordinator's process died");
        }
    }

    @TempDir
    Path work;

    @Test
    void aCheckpointWhoseCoordinatorDiedAfterTheCutIsResumedAndFinishedByAnother() throws Exception {
        try (TestCluster vc = new TestCluster(work, 300, 30)) {
            vc.bootAll();
            vc.awaitStep(15, RUN);
            AtomicReference<Instant> ts = new AtomicReference<>();
            ProtocolListener dyingAfterTheCut = new ProtocolListener() {
                @Override
                public void step(String description) {
                    System.out.println("first coordinator: " + description);
                }

                @Override
                public void reached(Stage stage, Instant at) {
                    if (stage == Stage.SUSPENDING) {
                        ts.set(at);
                    }
                    if (stage == Stage.RESUMING) {
                        throw new CoordinatorDied();
                    }
                }
            };
            Coordinator first = new Coordinator(List.of(vc.client1, vc.client2), Clock.systemUTC());
            try {
                first.checkpoint("cp1", vc.vmNames(), CheckpointOptions.defaults(), dyingAfterTheCut);
                throw new AssertionError("the first coordinator should have died");
            } catch (CoordinatorDied expected) {
                // every VM is paused at the cut now, its shadow complete, and nobody will resume it
            }
            for (AgentClientStatus s : statuses(vc)) {
                assertThat(s.status().vms()).allSatisfy(v -> assertThat(v.phase()).isEqualTo(VmPhase.CAPTURED));
            }
            Map<String, Long> reached = new LinkedHashMap<>();
            for (String vm : vc.vmNames()) {
                reached.put(vm, io.mekha.local.RingReference.lastStepReached(String.join("\n", vc.console(vm))));
            }

            try (Coordinator second = new Coordinator(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
                CheckpointReport report = second.adopt("cp1", vc.vmNames(), CheckpointOptions.defaults(), ts.get(), System.out::println);
                assertThat(report.vms()).hasSize(3);
                assertThat(report.barrierHeld()).isTrue();
                assertThat(report.suspendAt()).isEqualTo(ts.get());
                System.out.printf("adopted: suspend skew %s, resume skew %s%n", report.suspendSkew(), report.resumeSkew());

                // the VC runs on, crashes, and restarts from the adopted checkpoint exactly
                vc.awaitStep(vc.minStep() + 15, RUN);
                for (String vm : vc.vmNames()) {
                    ProcessHandle.of(vc.info(vm).pid()).ifPresent(p -> {
                        p.destroyForcibly();
                        p.onExit().join();
                    });
                }
                second.restart("cp1", System.out::println);
                Map<String, List<String>> consoles = vc.awaitRingDone(RUN);
                consoles.forEach((vm, lines) -> assertThat(io.mekha.local.RingReference.printed(lines, TestCluster.node(vm)).firstKey())
                        .as("%s resumed from the cut", vm).isLessThanOrEqualTo(reached.get(vm) + 1));
                assertThat(vc.mismatches(consoles)).isEmpty();
            } finally {
                first.close();
            }
        }
    }

    @Test
    void aCheckpointWhoseCoordinatorDiedInTheLiveStageIsAbortedByAnotherAndTheVcRunsOn() throws Exception {
        try (TestCluster vc = new TestCluster(work, 100000, 50)) {
            vc.bootAll();
            vc.awaitStep(10, RUN);
            Coordinator first = new Coordinator(List.of(vc.client1, vc.client2), Clock.systemUTC());
            ProtocolListener dyingInTheLiveStage = new ProtocolListener() {
                @Override
                public void step(String description) {
                }

                @Override
                public void reached(Stage stage, Instant at) {
                    if (stage == Stage.LIVE_STAGE) {
                        throw new CoordinatorDied();
                    }
                }
            };
            try {
                first.checkpoint("cp1", vc.vmNames(), CheckpointOptions.defaults(), dyingInTheLiveStage);
            } catch (CoordinatorDied expected) {
                // shadows prepared, live stage under way, nobody coordinating
            }
            try (Coordinator second = new Coordinator(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
                try {
                    second.adopt("cp1", vc.vmNames(), CheckpointOptions.defaults(), null, System.out::println);
                    throw new AssertionError("a checkpoint picked up before its cut must be aborted");
                } catch (CheckpointFailedException e) {
                    assertThat(e.getMessage()).contains("before its cut").contains("every VM left running");
                }
            } finally {
                first.close();
            }
            for (AgentClientStatus s : statuses(vc)) {
                assertThat(s.status().vms()).allSatisfy(v -> assertThat(v.phase()).isEqualTo(VmPhase.ABORTED));
            }
            for (String vm : vc.vmNames()) {
                assertThat(vc.info(vm).state()).isEqualTo("running");
                assertThat(vc.info(vm).checkpoint()).as("%s holds no shadow", vm).isNull();
            }
            vc.awaitStep(vc.minStep() + 5, RUN);
        }
    }

    record AgentClientStatus(String node, CheckpointStatus status) {}

    static List<AgentClientStatus> statuses(TestCluster vc) throws Exception {
        return List.of(new AgentClientStatus("n1", vc.client1.status("cp1")), new AgentClientStatus("n2", vc.client2.status("cp1")));
    }
}
