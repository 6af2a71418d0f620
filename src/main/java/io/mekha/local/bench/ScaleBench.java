package io.mekha.local.bench;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.agent.sim.SimulatedMonitor;
import io.mekha.agent.sim.SimulatedVms;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.ProtocolListener;
import io.mekha.protocol.VmCheckpointReport;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The coordinator against many nodes in one JVM: each node a real agent (rooms, watchdogs, its HTTP
 * API on loopback) with one simulated VM whose capture takes a given time, so that what is measured
 * is the coordinator's own cost: how far apart the VMs stop and resume, how long after the last
 * capture Tr comes, how many calls it makes, and the CPU its threads use.
 */
public final class ScaleBench implements AutoCloseable {

    /** One run's figures. */
    /**
     * One run's figures. {@code barrierToTrMs} is {@code heardMs} (the last capture until the coordinator knows of it)
     * plus {@code trLeadMs} (from then to Tr: the time to tell every agent, and the clock error); {@code stageMs} says
     * when the protocol reached each stage, from the start of the checkpoint.
     */
    public record Result(int agents, double suspendSkewMs, double resumeSkewMs, double barrierToTrMs, double heardMs, double trLeadMs,
                         double pauseMaxMs, double callsPerSecond, long calls, double coordinatorCpuMs, double checkpointMs,
                         Map<String, Double> stageMs) {}

    /**
     * The agents' own log, errors only while the benchmark runs: a thousand agents writing their info lines to one
     * console contend on its lock for minutes (measured: the prepare of 1,024 nodes timed out on it), which one agent
     * per node never does. Held here so that the setting stays.
     */
    private static final java.util.logging.Logger AGENT_LOG = java.util.logging.Logger.getLogger("io.mekha.agent");

    private final SimulatedMonitor monitor;
    private final List<AgentService> agents = new ArrayList<>();
    private final List<AgentHttpServer> servers = new ArrayList<>();
    private final List<AgentClient> clients = new ArrayList<>();
    private final Coordinator coordinator;
    private final int count;

    /** {@code count} nodes whose VMs' captures take from {@code captureDelay}/2 to 3/2 of it, spread evenly. */
    public ScaleBench(int count, Duration captureDelay, Path work) throws Exception {
        this.count = count;
        AGENT_LOG.setLevel(java.util.logging.Level.SEVERE);
        monitor = new SimulatedMonitor(work.resolve("monitor.qmp"));
        BearerToken token = BearerToken.random();
        // every node in one process: no node spins for its rendezvous, or they would take the CPUs from each other
        RendezvousClock clock = new RendezvousClock(Clock.systemUTC(), Duration.ZERO);
        for (int i = 0; i < count; i++) {
            Path dir = Files.createDirectories(work.resolve("n" + i));
            Duration capture = captureDelay.dividedBy(2).plus(captureDelay.multipliedBy(i).dividedBy(Math.max(1, count)));
            AgentService agent = new AgentService("n" + i, SimulatedVms.runtime(RuntimeConfig.defaults(dir), monitor, List.of("vm" + i)), clock,
                    dir.resolve("level1"), SimulatedVms.transfers(Duration.ofMillis(200), capture));
            agents.add(agent);
            AgentHttpServer server = new AgentHttpServer(agent, token, new InetSocketAddress("127.0.0.1", 0)).start();
            servers.add(server);
            clients.add(new AgentClient("n" + i, server.uri(), token.header(), Duration.ofSeconds(60)));
        }
        coordinator = new Coordinator(clients, Clock.systemUTC());
    }

    public Result run(String id) throws Exception {
        List<String> vms = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            vms.add("vm" + i);
        }
        long callsBefore = servers.stream().mapToLong(AgentHttpServer::requestsAnswered).sum();
        Map<Long, Long> cpuBefore = coordinatorCpu();
        Instant started = Instant.now();
        Map<String, Double> stages = new LinkedHashMap<>();
        Instant[] barrierHeard = new Instant[1];
        ProtocolListener timeline = new ProtocolListener() {
            @Override
            public void step(String description) {
            }

            @Override
            public void reached(Stage stage, Instant at) {
                stages.put(stage.name(), VcBench.ms(Duration.between(started, Instant.now())));
                if (stage == Stage.CAPTURED) {
                    barrierHeard[0] = Instant.now();
                }
            }
        };
        CheckpointReport report = coordinator.checkpoint(id, vms, CheckpointOptions.defaults(), timeline);
        Duration took = Duration.between(started, Instant.now());
        Map<Long, Long> cpuAfter = coordinatorCpu();
        long calls = servers.stream().mapToLong(AgentHttpServer::requestsAnswered).sum() - callsBefore;
        long cpu = 0;
        for (var e : cpuAfter.entrySet()) {
            cpu += e.getValue() - cpuBefore.getOrDefault(e.getKey(), 0L);
        }
        Instant lastCapture = report.vms().stream().map(VmCheckpointReport::capturedAt).filter(Objects::nonNull).max(Instant::compareTo)
                .orElseThrow();
        double pauseMax = report.vms().stream().mapToDouble(v -> VcBench.ms(v.figures().guestPaused())).max().orElse(Double.NaN);
        coordinator.discard(id);
        return new Result(count, VcBench.ms(report.suspendSkew()), VcBench.ms(report.resumeSkew()),
                VcBench.ms(Duration.between(lastCapture, report.resumeAt())), VcBench.ms(Duration.between(lastCapture, barrierHeard[0])),
                VcBench.ms(Duration.between(barrierHeard[0], report.resumeAt())), pauseMax, calls / (took.toNanos() / 1e9), calls, cpu / 1e6,
                VcBench.ms(took), stages);
    }

    /** CPU time (ns) of the coordinator's threads: its call pool, the HTTP client's, and this one. */
    private static Map<Long, Long> coordinatorCpu() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        Map<Long, Long> cpu = new HashMap<>();
        for (ThreadInfo info : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (info != null && (info.getThreadName().startsWith("coordinator-call") || info.getThreadName().startsWith("HttpClient")
                    || info.getThreadId() == Thread.currentThread().getId())) {
                long t = mx.getThreadCpuTime(info.getThreadId());
                if (t >= 0) {
                    cpu.put(info.getThreadId(), t);
                }
            }
        }
        return cpu;
    }

    @Override
    public void close() throws Exception {
        coordinator.close();
        servers.forEach(AgentHttpServer::close);
        agents.forEach(AgentService::close);
        monitor.close();
    }
}
