package io.mekha.local.bench;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.network.SegmentHub;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.local.GuestClockTrace;
import io.mekha.local.GuestImage;
import io.mekha.local.VcWorkload;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.ProtocolListener;
import io.mekha.protocol.RestartReport;
import io.mekha.protocol.VmCheckpointReport;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * One VC, one host, one workload, checkpointed in each mode in turn and restarted from memory each
 * time: per VM, its pause (QEMU's STOP to RESUME), final transfer, barrier wait, bytes, live stage
 * the clock jump its own clock shows across the restart, and when its stop was sent (after Ts) and how long QEMU
 * took to stop it; per VC, suspend and resume skew and how
 * far the distances between the guests' clocks moved. The VC is the one the last restart left.
 */
public final class VcBench implements AutoCloseable {
    private static final int LINES = 50;
    private static final Duration SETTLE = Duration.ofMillis(200);
    private static final Duration WAIT = Duration.ofMinutes(3);
    /** How long the guests' own speed is measured before each checkpoint, Mekha idle. */
    private static final Duration BASELINE = Duration.ofSeconds(3);

    /**
     * One VM's figures in one checkpoint-and-restart. The VC's: {@code completeMs} from Ts to the checkpoint's end,
     * {@code copyWindowMs} from Tr to it (a background snapshot's RAM streaming while the VC runs); the dirtiers' speed
     * (rounds per second) from the request to Ts and from Tr to the end, as a share of their speed in the 3 s before the
     * request (NaN without a dirtier, or a window too short to see a round); the resident memory of the shadows.
     */
    public record Row(String workload, String mode, String vm, double stopSentMs, double stopLatencyMs, double pausedMs, double finalTransferMs, double barrierWaitMs,
                      double trLeadMs, long bytes, double liveStageMs, int passes, int liveRestarts, String liveEnd, Double clockJumpMs,
                      Double reportedClockJumpMs, double suspendSkewMs, double resumeSkewMs, double offsetChangeAfterCheckpointMs,
                      double offsetChangeAfterRestartMs, double qemuCpuMs, double completeMs, double copyWindowMs,
                      double guestRateBeforeCut, double guestRateDuringCopy, double level0HeldMiB, boolean exact) {}

    private final VcWorkload workload;
    private final int vmCount;
    private final int steps;
    private final SegmentHub hub;
    /** The nodes' agents in this process, each with its own QEMUs and work directory; the first runs every VM but the last on two. */
    private final List<Node> nodes = new ArrayList<>();
    private final Coordinator coordinator;
    private final List<VmSpec> specs;
    private final Map<String, GuestClockTrace> traces = new LinkedHashMap<>();
    private final Consumer<String> progress;

    /** One node: its agent, the agent's HTTP server and a client of it; {@code lost} once the node is gone. */
    private static final class Node {
        final AgentService agent;
        final AgentHttpServer server;
        final AgentClient client;
        volatile boolean lost;

        Node(String name, RuntimeConfig config) throws IOException {
            this.agent = new AgentService(name, new LocalVmRuntime(config), new RendezvousClock(Clock.systemUTC()));
            BearerToken token = BearerToken.random();
            this.server = new AgentHttpServer(agent, token, new InetSocketAddress("127.0.0.1", 0)).start();
            this.client = new AgentClient(name, server.uri(), token.header(), Duration.ofSeconds(30));
        }

        /** As a node's crash: its agent stops answering, every QEMU it ran (VMs, shadows, the copies it held) is killed. */
        void lose() {
            lost = true;
            server.close();
            agent.close();
        }

        void close() {
            if (!lost) {
                lose();
            }
        }
    }

    /** Every VM on one node ("local"). */
    public VcBench(VcWorkload workload, int vmCount, long memoryMiB, RuntimeConfig config, Consumer<String> progress) throws IOException {
        this(workload, vmCount, memoryMiB, config, 1, progress);
    }

    /**
     * On {@code nodeCount} nodes (1 or 2), agents of this process: with two, node n2 runs the last VM and the others run
     * on n1, so that a node's loss can be played (its work directory beside {@code config}'s).
     */
    public VcBench(VcWorkload workload, int vmCount, long memoryMiB, RuntimeConfig config, int nodeCount, Consumer<String> progress)
            throws IOException {
        if (nodeCount < 1 || nodeCount > 2 || (nodeCount == 2 && vmCount < 2)) {
            throw new IllegalArgumentException("the bench runs on one node, or on two with at least 2 VMs; got " + nodeCount + " nodes, "
                    + vmCount + " VMs");
        }
        this.workload = workload;
        this.vmCount = vmCount;
        this.steps = 1_000_000;
        this.progress = progress;
        this.hub = SegmentHub.open("lan", 0);
        if (nodeCount == 1) {
            nodes.add(new Node("local", config));
        } else {
            nodes.add(new Node("n1", config));
            Path second = Files.createDirectories(config.workDir().resolveSibling(config.workDir().getFileName() + "-n2"));
            nodes.add(new Node("n2", config.withWorkDir(second)));
        }
        this.coordinator = new Coordinator(clients(), Clock.systemUTC());
        this.specs = workload.specs(GuestImage.locate().requireBuilt(), hub.port(), vmCount, memoryMiB, steps);
    }

    private List<AgentClient> clients() {
        return nodes.stream().map(n -> n.client).toList();
    }

    /** The VMs the nodes still there know, dead ones (a QEMU just killed) included. */
    private List<VmInfo> vms() throws Exception {
        List<VmInfo> all = new ArrayList<>();
        for (Node node : nodes) {
            if (!node.lost) {
                all.addAll(node.client.vms());
            }
        }
        return all;
    }

    /** The VM's current instance: a running one where a node has it, else the one that died (its console is the last). */
    private VmInfo vm(String name) throws Exception {
        List<VmInfo> named = vms().stream().filter(v -> v.name().equals(name)).toList();
        return named.stream().filter(v -> !"dead".equals(v.state())).findFirst().or(() -> named.stream().findFirst())
                .orElseThrow(() -> new IllegalStateException("no node knows VM " + name + " now"));
    }

    /** Boots the VC and lets the workload settle ({@code warmUp}). */
    public void boot(Duration warmUp) throws Exception {
        for (int i = 0; i < specs.size(); i++) {
            nodes.get(nodes.size() == 2 && i == specs.size() - 1 ? 1 : 0).client.startVm(specs.get(i));
        }
        for (VmSpec spec : specs) {
            traces.put(spec.name(), GuestClockTrace.follow(console(spec.name())));
        }
        Thread.sleep(warmUp.toMillis());
        traces.values().iterator().next().awaitAfter(Instant.now(), LINES + 5, WAIT);
    }

    /** One checkpoint in {@code mode}, a crash of every VM a second later, a restart from memory: the rows. */
    public List<Row> checkpointCrashRestart(TransferMode mode) throws Exception {
        String id = "bench-" + mode.name().toLowerCase() + "-" + System.nanoTime();
        Map<String, Long> cpuBefore = qemuCpu();
        GuestRate rate = GuestRate.start(dirtierConsoles());
        Instant baselineFrom = Instant.now();
        Thread.sleep(BASELINE.toMillis()); // the guests' own speed, Mekha idle
        Instant asked = Instant.now();
        CheckpointReport cut = coordinator.checkpoint(id, names(), CheckpointOptions.defaults().withMode(mode), ProtocolListener.NONE);
        Instant complete = Instant.now();
        double held = level0HeldMiB();
        Map<String, Long> cpuAfter = qemuCpu();
        // the guests' speed between the resume and the checkpoint's end (a background snapshot's copy), against Mekha idle
        Thread.sleep(100);
        double own = rate.between(baselineFrom, asked);
        double beforeCut = rate.between(asked, cut.suspendAt()) / own; // shadows started, and MTD's live stage
        double duringCopy = rate.between(cut.resumeAt(), complete) / own;
        rate.close();
        Map<String, Duration> before = new LinkedHashMap<>();
        Map<String, Duration> afterCut = new LinkedHashMap<>();
        for (String vm : names()) {
            before.put(vm, traces.get(vm).offsetBefore(cut.suspendAt(), LINES));
            afterCut.put(vm, GuestClockTrace.offset(traces.get(vm).awaitAfter(cut.resumeAt().plus(SETTLE), LINES, WAIT)));
        }
        Thread.sleep(1000);
        for (VmInfo vm : vms()) {
            ProcessHandle.of(vm.pid()).ifPresent(p -> {
                p.destroyForcibly();
                p.onExit().join();
            });
        }
        Map<String, List<String>> consolesBefore = consoles();
        RestartReport restart = coordinator.restart(id, ProtocolListener.NONE);
        for (String vm : names()) {
            traces.get(vm).switchTo(console(vm));
        }
        Map<String, Duration> afterRestart = new LinkedHashMap<>();
        for (String vm : names()) {
            afterRestart.put(vm, GuestClockTrace.offset(traces.get(vm).awaitAfter(restart.resumeAt().plus(SETTLE), LINES, WAIT)));
        }
        Thread.sleep(2000);
        List<String> mismatches = workload.mismatches(consolesBefore, consoles(), vmCount, steps);
        mismatches.stream().limit(3).forEach(m -> progress.accept("  MISMATCH " + m));
        coordinator.discard(id);

        Instant lastCapture = cut.vms().stream().map(VmCheckpointReport::capturedAt).filter(Objects::nonNull).max(Comparator.naturalOrder())
                .orElse(cut.resumeAt());
        double cutChange = distanceChange(before, afterCut);
        double restartChange = distanceChange(before, afterRestart);
        List<Row> rows = new ArrayList<>();
        for (VmCheckpointReport v : cut.vms()) {
            var f = v.figures();
            Instant resumedAgain = restart.resumedAt().get(v.vm());
            // from the freeze (QEMU's run-state trace), not the STOP event, which may come tens of ms after it
            Double jump = resumedAgain == null || v.cutAt() == null ? null
                    : ms(afterRestart.get(v.vm()).minus(before.get(v.vm()).minus(Duration.between(v.cutAt(), resumedAgain))));
            Duration reported = restart.clocks().get(v.vm()) == null ? null : restart.clocks().get(v.vm()).jump();
            rows.add(new Row(workload.label(), mode.displayName(), v.vm(), ms(Duration.between(cut.suspendAt(), v.stopSentAt())),
                    ms(Duration.between(v.stopSentAt(), v.stoppedAt())), ms(f.guestPaused()), ms(Duration.between(v.stoppedAt(), v.capturedAt())),
                    ms(Duration.between(v.capturedAt(), lastCapture)), ms(Duration.between(lastCapture, cut.resumeAt())), f.bytesTransferred(),
                    ms(f.liveStage()), f.passes(), v.liveRestarts(), f.liveEnd(), jump, reported == null ? null : ms(reported),
                    ms(cut.suspendSkew()), ms(cut.resumeSkew()), cutChange, restartChange,
                    (cpuAfter.getOrDefault(v.vm(), 0L) - cpuBefore.getOrDefault(v.vm(), 0L)) / 1e6,
                    ms(Duration.between(cut.suspendAt(), complete)), ms(Duration.between(cut.resumeAt(), complete)), beforeCut, duringCopy, held,
                    mismatches.isEmpty()));
        }
        return rows;
    }

    /** One automatic recovery after a VM's QEMU was killed: from the kill to the failure being seen and to every VM running again. */
    public record RecoveryRow(String workload, String level, String failedVm, double detectionMs, double runningMs, double restoreMs,
                              double workLostMs, boolean exact) {}

    /**
     * Automatic recovery ({@link io.mekha.local.VcProtector}, as {@code mekha protect} runs it) from each level in turn: one
     * checkpoint flushed to L1 and L2 ({@code level2}); a VM's QEMU killed, recovered from memory (which the restart uses
     * up); killed again, recovered from the node's disk; its L1 copy released and killed again, recovered from L2. Each
     * time the workload must go on exactly.
     */
    public List<RecoveryRow> recoveries(java.nio.file.Path level2) throws Exception {
        String id = "bench-recovery-" + System.nanoTime();
        CheckpointOptions options = CheckpointOptions.defaults();
        CheckpointReport cut = coordinator.checkpoint(id, names(), options, ProtocolListener.NONE);
        List<RecoveryRow> rows = new ArrayList<>();
        io.mekha.storage.StorageTarget shared = new io.mekha.storage.StorageTarget.Filesystem(level2.toAbsolutePath());
        try (io.mekha.protocol.CheckpointStorage storage = new io.mekha.protocol.CheckpointStorage(clients(), Clock.systemUTC())) {
            Map<String, Long> sizes = new LinkedHashMap<>();
            cut.vms().forEach(v -> sizes.put(v.vm(), v.figures().bytesTransferred()));
            var flush = storage.flush(io.mekha.protocol.CheckpointStorage.draft("bench", cut, options, Instant.now()), sizes,
                    io.mekha.protocol.FlushPlan.level1().withLevels(List.of(io.mekha.storage.StorageLevel.L1, io.mekha.storage.StorageLevel.L2), shared),
                    ProtocolListener.NONE);
            if (!flush.failures().isEmpty()) {
                throw new IllegalStateException("the flush to L1 and L2 failed: " + flush.failures());
            }
            List<CheckpointReport> checkpoints = new java.util.concurrent.CopyOnWriteArrayList<>(List.of(cut));
            io.mekha.local.VcProtector protector = new io.mekha.local.VcProtector("bench", clients(), names(), () -> List.copyOf(checkpoints),
                    x -> shared, storage, new io.mekha.local.VcProtector.Settings(Duration.ofMillis(250), Duration.ofSeconds(2)),
                    new io.mekha.protocol.RecoveryBudget(10, Duration.ofHours(1), Duration.ZERO, Duration.ZERO), Clock.systemUTC(),
                    line -> progress.accept("  [protect] " + line));
            java.util.concurrent.atomic.AtomicBoolean go = new java.util.concurrent.atomic.AtomicBoolean(true);
            var watching = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return protector.run(go::get);
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            try {
                String victim = names().get(Math.min(1, names().size() - 1));
                for (io.mekha.storage.StorageLevel level : List.of(io.mekha.storage.StorageLevel.L0, io.mekha.storage.StorageLevel.L1,
                        io.mekha.storage.StorageLevel.L2)) {
                    if (level == io.mekha.storage.StorageLevel.L2) {
                        storage.release("bench", id, io.mekha.storage.StorageLevel.L1, shared, false);
                    }
                    Thread.sleep(2000); // the VC works on past the cut
                    Map<String, List<String>> consolesBefore = consoles();
                    ProcessHandle qemu = ProcessHandle.of(vm(victim).pid()).orElseThrow();
                    Instant killed = Instant.now();
                    qemu.destroyForcibly();
                    qemu.onExit().join();
                    io.mekha.local.VcProtector.Recovery r = awaitRecovery(protector, watching, rows.size() + 1, "from " + level);
                    rows.add(row(r, r.level().name(), victim, killed, consolesBefore, r.level() == level));
                }
                if (nodes.size() == 2) {
                    // a second checkpoint, its level 0 also on the other node; then node n2 is lost with its VM and the copies it held
                    CheckpointReport second = coordinator.checkpoint(id + "-n", names(), options, ProtocolListener.NONE);
                    var partners = storage.replicateLevel0(second.id(), ProtocolListener.NONE).partners();
                    progress.accept("  level 0 of " + second.id() + " also held on partner nodes (VM=node): " + partners);
                    checkpoints.add(second);
                    Thread.sleep(2000); // the VC works on past the cut
                    Map<String, List<String>> consolesBefore = consoles();
                    String onN2 = names().get(names().size() - 1);
                    Instant lost = Instant.now();
                    nodes.get(1).lose();
                    io.mekha.local.VcProtector.Recovery r = awaitRecovery(protector, watching, rows.size() + 1, "after node n2 was lost");
                    boolean allOnN1 = nodes.get(0).client.vms().stream().filter(v -> "running".equals(v.state())).count() == vmCount;
                    rows.add(row(r, "L0 on partner", onN2, lost, consolesBefore, r.level() == io.mekha.storage.StorageLevel.L0 && allOnN1));
                }
            } finally {
                go.set(false);
                watching.get(60, java.util.concurrent.TimeUnit.SECONDS);
                try {
                    storage.delete("bench", id, shared);
                } catch (Exception e) {
                    progress.accept("  (level 2 of " + id + " left in " + level2 + ": " + e.getMessage() + ")");
                }
            }
        }
        return rows;
    }

    /** Waits for the protector's {@code n}th recovery to end; it must have brought the VC back. */
    private static io.mekha.local.VcProtector.Recovery awaitRecovery(io.mekha.local.VcProtector protector,
                                                                     java.util.concurrent.Future<io.mekha.local.VcProtector.Outcome> watching, int n,
                                                                     String what) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (protector.history().size() < n) {
            if (watching.isDone() || System.nanoTime() > deadline) {
                throw new IllegalStateException("no recovery " + what + " came: " + (watching.isDone() ? watching.get() : "timed out"));
            }
            Thread.sleep(20);
        }
        io.mekha.local.VcProtector.Recovery r = protector.history().get(n - 1);
        if (r.error() != null) {
            throw new IllegalStateException("the recovery " + what + " failed: " + r.error());
        }
        return r;
    }

    /** A recovery's row, once the VC has run on 2 s: exact if the workload went on as an uninterrupted run and {@code asExpected}. */
    private RecoveryRow row(io.mekha.local.VcProtector.Recovery r, String level, String failed, Instant failedAt,
                            Map<String, List<String>> consolesBefore, boolean asExpected) throws Exception {
        Thread.sleep(2000);
        List<String> mismatches = workload.mismatches(consolesBefore, consoles(), vmCount, steps);
        mismatches.stream().limit(3).forEach(m -> progress.accept("  MISMATCH " + m));
        return new RecoveryRow(workload.label(), level, failed, Duration.between(failedAt, r.detectedAt()).toNanos() / 1e6,
                Duration.between(failedAt, r.runningAt()).toNanos() / 1e6, r.restore().toNanos() / 1e6, r.workLost().toNanos() / 1e6,
                mismatches.isEmpty() && asExpected);
    }

    private List<String> names() {
        return specs.stream().map(VmSpec::name).toList();
    }

    /** Every VM's current console, by VM. */
    private Map<String, List<String>> consoles() throws Exception {
        Map<String, List<String>> consoles = new LinkedHashMap<>();
        for (String vm : names()) {
            consoles.put(vm, Files.readAllLines(console(vm)));
        }
        return consoles;
    }

    private Path console(String vm) throws Exception {
        return Path.of(vm(vm).consolePath());
    }

    /** The consoles of the VMs that run the dirtier. */
    private List<Path> dirtierConsoles() throws Exception {
        List<Path> consoles = new ArrayList<>();
        for (int i = 0; i < vmCount; i++) {
            if (workload.dirtier(i)) {
                consoles.add(console(names().get(i)));
            }
        }
        return consoles;
    }

    /**
     * Host memory the level-0 copies hold: the resident memory of this process's shadow QEMUs, in MiB. A VM restarted from
     * memory runs in what was its shadow: the VC's own QEMUs are left out.
     */
    private double level0HeldMiB() throws Exception {
        java.util.Set<Long> running = new java.util.HashSet<>();
        vms().forEach(vm -> running.add(vm.pid()));
        long kib = 0;
        for (ProcessHandle p : ProcessHandle.current().descendants().toList()) {
            if (running.contains(p.pid()) || !p.info().commandLine().orElse("").contains(".shadow-")) {
                continue;
            }
            try {
                kib += Files.readAllLines(Path.of("/proc/" + p.pid() + "/status")).stream().filter(l -> l.startsWith("VmRSS:"))
                        .mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", ""))).sum();
            } catch (IOException | RuntimeException gone) {
                // exited meanwhile
            }
        }
        return kib / 1024.0;
    }

    /**
     * The dirtiers' rounds per second, all VMs together, read from their consoles every 20 ms: how fast the guests run
     * in a window (NaN without a dirtier).
     */
    static final class GuestRate implements AutoCloseable {
        private final List<Path> consoles;
        private final java.util.concurrent.ConcurrentSkipListMap<Instant, Long> samples = new java.util.concurrent.ConcurrentSkipListMap<>();
        private final Thread sampler;
        private volatile boolean running = true;

        private GuestRate(List<Path> consoles) {
            this.consoles = consoles;
            this.sampler = new Thread(this::sample, "bench-guest-rate");
            sampler.setDaemon(true);
            sampler.start();
        }

        static GuestRate start(List<Path> consoles) {
            return new GuestRate(consoles);
        }

        private void sample() {
            while (running) {
                long rounds = 0;
                try {
                    for (Path console : consoles) {
                        rounds += io.mekha.local.DirtierLog.lastRound(Files.readAllLines(console));
                    }
                    samples.put(Instant.now(), rounds);
                    Thread.sleep(20);
                } catch (IOException | java.io.UncheckedIOException e) {
                    // a console being rewritten: the next sample
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        /** Rounds per second from {@code from} to {@code to}, from the samples nearest inside the window. */
        double between(Instant from, Instant to) {
            if (consoles.isEmpty()) {
                return Double.NaN;
            }
            var first = samples.ceilingEntry(from);
            var last = samples.floorEntry(to);
            if (first == null || last == null || !last.getKey().isAfter(first.getKey())) {
                return Double.NaN;
            }
            return (last.getValue() - first.getValue()) / (Duration.between(first.getKey(), last.getKey()).toNanos() / 1e9);
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            sampler.interrupt();
            sampler.join();
        }
    }

    /** Each VM's QEMU CPU time so far (user + system, ns), from /proc. */
    private Map<String, Long> qemuCpu() throws Exception {
        long tick = 10_000_000L; // USER_HZ 100 on Linux
        Map<String, Long> cpu = new LinkedHashMap<>();
        for (VmInfo vm : vms()) {
            try {
                String[] stat = Files.readString(Path.of("/proc/" + vm.pid() + "/stat")).replaceAll(".*\\) ", "").split(" ");
                cpu.put(vm.name(), (Long.parseLong(stat[11]) + Long.parseLong(stat[12])) * tick);
            } catch (IOException | RuntimeException e) {
                // gone: no figure
            }
        }
        return cpu;
    }

    /** The most the distance between any two guests' clocks moved, in ms. */
    static double distanceChange(Map<String, Duration> before, Map<String, Duration> after) {
        List<String> vms = List.copyOf(before.keySet());
        double worst = 0;
        for (int i = 0; i < vms.size(); i++) {
            for (int j = i + 1; j < vms.size(); j++) {
                Duration was = before.get(vms.get(i)).minus(before.get(vms.get(j)));
                Duration now = after.get(vms.get(i)).minus(after.get(vms.get(j)));
                worst = Math.max(worst, Math.abs(ms(now.minus(was))));
            }
        }
        return worst;
    }

    static double ms(Duration d) {
        return d == null ? Double.NaN : d.toNanos() / 1e6;
    }

    @Override
    public void close() {
        traces.values().forEach(GuestClockTrace::close);
        coordinator.close();
        nodes.forEach(Node::close);
        try {
            hub.close();
        } catch (IOException ignored) {
            // the hub's socket goes with the process
        }
    }
}
