package io.mekha.local;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.FlushPlan;
import io.mekha.protocol.RecoveryBudget;
import io.mekha.storage.StorageLevel;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Automatic recovery of a local VC (issue 16): the ring VC on two agents, protected; a VM's QEMU is killed and the whole
 * VC comes back by itself from its newest checkpoint, the ring's sums exact; a VM that keeps crashing stops recovery at
 * the limit, with the reason.
 */
@Tag("qemu")
@Tag("faults")
@ExtendWith(NoQemuLeftBehind.class)
class VcProtectorTest {
    static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path work;

    @Test
    void aVmWhoseQemuDiesIsRestoredByItselfWithTheWholeVcExactly() throws Exception {
        try (TestCluster vc = new TestCluster(work, 300, 30);
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            vc.bootAll();
            vc.awaitStep(15, RUN);
            CheckpointReport cp = vc.coordinator.checkpoint("cp1", vc.vmNames(), CheckpointOptions.defaults(), System.out::println);
            Map<String, Long> reached = vc.reachedSteps();
            List<String> events = new CopyOnWriteArrayList<>();
            try (Watch watch = Watch.start(vc, storage, List.of(cp), new RecoveryBudget(3, Duration.ofMinutes(10), Duration.ofSeconds(1),
                    Duration.ofSeconds(10)), events)) {
                vc.awaitStep(Math.min(vc.minStep() + 15, vc.steps()), RUN);
                Instant killed = kill(vc, "vm2");
                VcProtector.Recovery recovery = watch.awaitRecoveries(1).get(0);
                System.out.printf("detected %d ms after the kill, every VM running %d ms after it (restore %d ms), work lost %d ms%n",
                        Duration.between(killed, recovery.detectedAt()).toMillis(), Duration.between(killed, recovery.runningAt()).toMillis(),
                        recovery.restore().toMillis(), recovery.workLost().toMillis());
                assertThat(recovery.error()).isNull();
                assertThat(recovery.failed()).containsExactly("vm2");
                assertThat(recovery.cause()).contains("VM vm2's QEMU").contains("exited");
                assertThat(recovery.checkpoint()).isEqualTo("cp1");
                assertThat(recovery.level()).isEqualTo(StorageLevel.L0);
                assertThat(recovery.detectedAt()).isAfter(killed);
                assertThat(events).anyMatch(e -> e.startsWith("detected: VM vm2's QEMU")).anyMatch(e -> e.startsWith("recovered: every VM"));
                vc.assertFinishesExactly(reached, RUN);
            }
        }
    }

    @Test
    void aNodeLostWithItsAgentAndVmIsRestoredByItselfFromThePartnerCopiesExactly() throws Exception {
        try (TestCluster vc = new TestCluster(work, 300, 30);
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            vc.bootAll();
            vc.awaitStep(15, RUN);
            CheckpointReport cp = vc.coordinator.checkpoint("cp1", vc.vmNames(), CheckpointOptions.defaults(), System.out::println);
            assertThat(storage.replicateLevel0("cp1", System.out::println).partners()).containsEntry("vm3", "n1");
            Map<String, Long> reached = vc.reachedSteps();
            List<String> events = new CopyOnWriteArrayList<>();
            try (Watch watch = Watch.start(vc, storage, List.of(cp), new RecoveryBudget(3, Duration.ofMinutes(10), Duration.ofSeconds(1),
                    Duration.ofSeconds(10)), events)) {
                vc.awaitStep(Math.min(vc.minStep() + 15, vc.steps()), RUN);
                Instant lost = Instant.now();
                vc.agent2.kill(); // node n2: its agent, vm3 and the partner copies of vm1 and vm2 it held
                VcProtector.Recovery recovery = watch.awaitRecoveries(1).get(0);
                System.out.printf("node lost: detected %d ms after, every VM running %d ms after (restore %d ms), work lost %d ms%n",
                        Duration.between(lost, recovery.detectedAt()).toMillis(), Duration.between(lost, recovery.runningAt()).toMillis(),
                        recovery.restore().toMillis(), recovery.workLost().toMillis());
                assertThat(recovery.error()).isNull();
                assertThat(recovery.failed()).containsExactly("vm3");
                assertThat(recovery.cause()).contains("node n2's agent has not answered").contains("its node is lost");
                assertThat(recovery.level()).isEqualTo(StorageLevel.L0);
                assertThat(vc.client1.vms()).extracting(VmInfo::name).as("every VM runs on n1 now").contains("vm1", "vm2", "vm3");
                vc.assertFinishesExactly(reached, RUN);
                assertThat(watch.protector().history()).as("the lost node, whose VMs run elsewhere now, is no new failure").hasSize(1);
            }
        }
    }

    @Test
    void aVmThatKeepsCrashingStopsRecoveryAtTheLimitWithTheReason() throws Exception {
        try (TestCluster vc = new TestCluster(work, 100000, 30);
             CheckpointStorage storage = new CheckpointStorage(List.of(vc.client1, vc.client2), Clock.systemUTC())) {
            vc.bootAll();
            vc.awaitStep(10, RUN);
            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport cp = vc.coordinator.checkpoint("cp1", vc.vmNames(), options, System.out::println);
            // level 1 as well: a restart from memory uses the shadows up, the next recovery comes from the node's disk
            assertThat(storage.flush(CheckpointStorage.draft("ring", cp, options, Instant.now()), sizes(cp), FlushPlan.level1(),
                    System.out::println).failures()).isEmpty();
            List<String> events = new CopyOnWriteArrayList<>();
            try (Watch watch = Watch.start(vc, storage, List.of(cp), new RecoveryBudget(2, Duration.ofMinutes(10), Duration.ZERO,
                    Duration.ZERO), events)) {
                for (int crash = 1; crash <= 2; crash++) {
                    vc.awaitStep(vc.minStep() + 3, RUN);
                    kill(vc, "vm1");
                    VcProtector.Recovery r = watch.awaitRecoveries(crash).get(crash - 1);
                    assertThat(r.error()).as("recovery %d", crash).isNull();
                    assertThat(r.level()).as("recovery %d", crash).isEqualTo(crash == 1 ? StorageLevel.L0 : StorageLevel.L1);
                }
                vc.awaitStep(vc.minStep() + 3, RUN);
                kill(vc, "vm1");
                VcProtector.Outcome outcome = watch.outcome.get(60, TimeUnit.SECONDS);
                assertThat(outcome.history()).hasSize(2);
                assertThat(outcome.stoppedBecause()).contains("VM vm1's QEMU").contains("exited")
                        .contains("2 recoveries within 10m already, the limit").contains("automatic recovery stopped");
                assertThat(events).anyMatch(e -> e.startsWith("recovery stopped: "));
                assertThat(vc.info("vm1").state()).as("nothing restored it a third time").isEqualTo("dead");
            }
        }
    }

    /** The protector on its own thread, over the test cluster's two agents. */
    record Watch(VcProtector protector, AtomicBoolean go, CompletableFuture<VcProtector.Outcome> outcome, List<String> events)
            implements AutoCloseable {
        static Watch start(TestCluster vc, CheckpointStorage storage, List<CheckpointReport> checkpoints, RecoveryBudget budget,
                           List<String> events) {
            VcProtector protector = new VcProtector("ring", List.of(vc.client1, vc.client2), vc.vmNames(), () -> checkpoints, id -> null,
                    storage, new VcProtector.Settings(Duration.ofMillis(250), Duration.ofSeconds(2)), budget, Clock.systemUTC(), line -> {
                        System.out.println("[protect] " + line);
                        events.add(line);
                    });
            AtomicBoolean go = new AtomicBoolean(true);
            CompletableFuture<VcProtector.Outcome> outcome = CompletableFuture.supplyAsync(() -> {
                try {
                    return protector.run(go::get);
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            return new Watch(protector, go, outcome, events);
        }

        /** Waits until {@code n} recoveries have ended (each ends with "recovered" or "failed"); their records. */
        List<VcProtector.Recovery> awaitRecoveries(int n) throws Exception {
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (protector.history().size() < n) {
                assertThat(outcome.isDone()).as("the protector still runs: %s", events).isFalse();
                assertThat(System.nanoTime()).as("%d recoveries: %s", n, events).isLessThan(deadline);
                Thread.sleep(100);
            }
            return protector.history();
        }

        @Override
        public void close() throws Exception {
            go.set(false);
            outcome.get(60, TimeUnit.SECONDS);
        }
    }

    static Instant kill(TestCluster vc, String vm) throws Exception {
        VmInfo info = vc.info(vm);
        ProcessHandle qemu = ProcessHandle.of(info.pid()).orElseThrow();
        Instant at = Instant.now();
        qemu.destroyForcibly();
        qemu.onExit().join();
        return at;
    }

    static Map<String, Long> sizes(CheckpointReport report) {
        Map<String, Long> sizes = new HashMap<>();
        report.vms().forEach(v -> sizes.put(v.vm(), v.figures().bytesTransferred()));
        return sizes;
    }
}
