package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.agent.sim.SimulatedMonitor;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An agent whose VMs are fakes (answering on a {@link SimulatedMonitor}, no QEMU) and whose transfers are {@link FakeTransfer}s the
 * test drives: the agent's own rooms, watchdogs and phase table run for real.
 */
final class FakeNode implements AutoCloseable {
    final AgentService agent;
    /** Every transfer the agent asked for, by VM, in order (a live stage that starts over adds one). */
    final Map<String, List<FakeTransfer>> transfers = new ConcurrentHashMap<>();
    private final SimulatedMonitor monitor;
    private final List<QemuVm> vms = new ArrayList<>();

    FakeNode(Path work, String... names) throws IOException, QmpException {
        monitor = new SimulatedMonitor(work.resolve("monitor.qmp"));
        for (String name : names) {
            QmpClient qmp = QmpClient.connect(monitor.path(), Duration.ofSeconds(5));
            vms.add(QemuVm.attached(VmSpec.named(name).build(), Accelerator.TCG, QemuCommandLine.InstancePaths.in(work.resolve(name)),
                    List.of("fake"), ProcessHandle.current(), qmp, null));
        }
        RuntimeConfig config = RuntimeConfig.defaults(work);
        VmRuntime runtime = new VmRuntime() {
            @Override
            public String kind() {
                return "fake";
            }

            @Override
            public RuntimeConfig config() {
                return config;
            }

            @Override
            public QemuVm start(VmSpec spec) throws VmStartException {
                throw new VmStartException("the fake runtime starts nothing");
            }

            @Override
            public List<QemuVm> discover() {
                return List.copyOf(vms);
            }

            @Override
            public Level0Copy level0(QemuVm source) throws VmStartException {
                throw new VmStartException("transfers come from the test");
            }

            @Override
            public QemuVm startIncoming(VmSpec spec, Accelerator accel, Path diskAtCut) throws VmStartException {
                throw new VmStartException("the fake runtime starts nothing");
            }

            @Override
            public io.mekha.agent.api.PartnerKind partnerCopies() {
                return io.mekha.agent.api.PartnerKind.NONE;
            }

            @Override
            public void close() {
                vms.forEach(QemuVm::kill);
            }
        };
        agent = new AgentService("fake", runtime, new RendezvousClock(Clock.systemUTC()), work.resolve("level1"), (source, mode, bounds) -> {
            FakeTransfer t = new FakeTransfer(mode, bounds);
            transfers.computeIfAbsent(source.name(), k -> new java.util.concurrent.CopyOnWriteArrayList<>()).add(t);
            return t;
        });
    }

    FakeTransfer transfer(String vm) {
        List<FakeTransfer> all = transfers.get(vm);
        return all.get(all.size() - 1);
    }

    /** A condition on a checkpoint's status (and whatever else the test looks at). */
    @FunctionalInterface
    interface Condition {
        boolean holds(CheckpointStatus status) throws Exception;
    }

    /** Waits, on the agent's own change notifications, until {@code test} holds for the checkpoint's status. */
    CheckpointStatus await(String id, Condition test, String what) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        CheckpointStatus status = agent.status(id);
        while (!test.holds(status)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("checkpoint " + id + " never got to " + what + ": " + status);
            }
            status = agent.awaitChange(id, status.version(), Duration.ofSeconds(1));
        }
        return status;
    }

    CheckpointStatus awaitAll(String id, VmPhase phase) throws Exception {
        return await(id, s -> s.vms().stream().allMatch(v -> v.phase() == phase), "every VM " + phase);
    }

    @Override
    public void close() throws IOException {
        agent.close();
        monitor.close();
    }
}
