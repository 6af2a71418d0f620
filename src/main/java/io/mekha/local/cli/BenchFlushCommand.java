package io.mekha.local.cli;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.local.DirtierLog;
import io.mekha.local.GuestImage;
import io.mekha.model.MemorySize;
import io.mekha.local.TextTable;
import io.mekha.local.bench.BenchCharts;
import io.mekha.local.bench.BenchDocument;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.FlushPlan;
import io.mekha.protocol.FlushReport;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The flush-scheduler figure: one checkpoint of several VMs on two agents saved to one shared
 * target, first with every VM writing at once, then as the scheduler does it (bounded writers,
 * smallest first). Prints time to all durable, each write's time against the target's timeout,
 * and the host memory the writes held (dirty and writeback page cache). Point {@code --target}
 * at a bandwidth-limited filesystem: {@code scripts/bench-flush.sh} builds one.
 */
@Command(name = "bench-flush", mixinStandardHelpOptions = true,
        description = "Flush one checkpoint of several VMs to a shared target, all at once and then scheduled; print the figures.")
public class BenchFlushCommand implements Callable<Integer> {

    @Option(names = "--target", required = true, description = "the shared (level-2) directory to write to")
    Path target;

    @Option(names = "--vms", defaultValue = "4", description = "VMs in the VC, split over two agents (default: ${DEFAULT-VALUE})")
    int vms;

    @Option(names = "--memory", defaultValue = "384Mi", description = "guest memory per VM (default: ${DEFAULT-VALUE})")
    String memory;

    @Option(names = "--fill", defaultValue = "160Mi", description = "memory each guest fills with data (default: ${DEFAULT-VALUE})")
    String fill;

    @Option(names = "--writers", defaultValue = "1", description = "writers the scheduled run allows at once (default: ${DEFAULT-VALUE})")
    int writers;

    @Option(names = "--timeout", defaultValue = "PT10S", description = "the target's write timeout, ISO-8601 (default: ${DEFAULT-VALUE})")
    Duration timeout;

    @Mixin
    RuntimeOptions runtime;

    @Option(names = "--out", defaultValue = "docs/bench", description = "where the JSON and the figure go (default: ${DEFAULT-VALUE})")
    Path outDir;

    /** One run's figures: seconds, and each write's queueing and writing time in the order they started. */
    public record FlushRow(String run, int writers, double timeToDurableS, double longestWriteS, long writesOverTimeout, int writes,
                           long peakDirtyAndWritebackBytes, long bytesWritten, List<Map<String, Object>> perWrite) {}

    private final PrintStream out = System.out;

    @Override
    public Integer call() throws Exception {
        long memoryMiB = MemorySize.parseMiB(memory);
        long fillMiB = MemorySize.parseMiB(fill);
        GuestImage guest = GuestImage.locate().requireBuilt();
        RuntimeConfig config = runtime.config("mekha-bench-flush-");
        BearerToken token = BearerToken.random();
        StorageTarget shared = new StorageTarget.Filesystem(target.toAbsolutePath());
        List<AgentService> services = new ArrayList<>();
        List<AgentHttpServer> servers = new ArrayList<>();
        List<AgentClient> clients = new ArrayList<>();
        try {
            for (String node : List.of("n1", "n2")) {
                RuntimeConfig nodeConfig = new RuntimeConfig(config.qemuBinary(), Files.createDirectories(config.workDir().resolve(node)),
                        config.accelerator(), config.bootTimeout(), config.qmpTimeout());
                AgentService service = new AgentService(node, new LocalVmRuntime(nodeConfig), new RendezvousClock(Clock.systemUTC()));
                AgentHttpServer server = new AgentHttpServer(service, token, new InetSocketAddress("127.0.0.1", 0)).start();
                services.add(service);
                servers.add(server);
                clients.add(new AgentClient(node, server.uri(), token.header(), Duration.ofSeconds(30)));
            }
            List<String> names = new ArrayList<>();
            out.printf("Flush scheduler: %d VMs of %d MiB (each filling %d MiB), 2 agents, one shared target %s, write timeout %s.%n",
                    vms, memoryMiB, fillMiB, target, TextTable.seconds(timeout));
            for (int i = 1; i <= vms; i++) {
                // sizes differ on purpose, so that the order matters: VM i fills i/vms of --fill
                long fillThis = Math.max(16, fillMiB * i / vms);
                VmSpec spec = VmSpec.named("vm" + i)
                        .memoryMiB(memoryMiB).boot(guest.kernel(), guest.initrd())
                        .workload("dirtier -m " + fillThis + " -d 1 -i 2000").build();
                clients.get(i % 2).startVm(spec);
                names.add(spec.name());
            }
            awaitFilled(services, names);
            try (Coordinator coordinator = new Coordinator(clients, Clock.systemUTC());
                 CheckpointStorage storage = new CheckpointStorage(clients, Clock.systemUTC())) {
                CheckpointOptions options = CheckpointOptions.defaults().withMode(TransferMode.STOP_AND_COPY);
                FlushPlan base = FlushPlan.level1().withLevels(List.of(StorageLevel.L2), shared)
                        .withWriteTimeout(Duration.ofHours(1)); // measured against --timeout, not enforced, so both runs finish

                TextTable table = new TextTable("run", "writers", "time to all durable", "longest write", "writes over timeout",
                        "peak dirty+writeback", "MiB written");
                FlushPlan[] runs = {base.withWriters(1, vms).withOrder(FlushPlan.Order.AS_LISTED),
                        base.withWriters(1, writers).withOrder(FlushPlan.Order.SMALLEST_FIRST)};
                String[] labels = {"every VM at once", "scheduled, smallest first"};
                List<FlushRow> rows = new ArrayList<>();
                for (int r = 0; r < runs.length; r++) {
                    // a fresh checkpoint per run: QEMU streams a shadow out only once
                    String id = "bench-" + (r + 1);
                    CheckpointReport report = coordinator.checkpoint(id, names, options, s -> { });
                    Map<String, Long> sizes = new HashMap<>();
                    report.vms().forEach(v -> sizes.put(v.vm(), v.figures().bytesTransferred()));
                    syncAndSettle();
                    PageCacheSampler sampler = new PageCacheSampler();
                    sampler.start();
                    FlushReport flush = storage.flush(CheckpointStorage.draft("bench", report, options, Instant.now()), sizes, runs[r],
                            s -> { });
                    sampler.stop();
                    if (!flush.durable()) {
                        throw new IllegalStateException(labels[r] + " did not complete: " + flush.failures());
                    }
                    Duration longest = flush.writes().stream().map(FlushReport.Write::took).max(Duration::compareTo).orElse(Duration.ZERO);
                    long over = flush.writes().stream().filter(w -> w.took().compareTo(timeout) > 0).count();
                    long bytes = flush.writes().stream().mapToLong(FlushReport.Write::bytes).sum();
                    out.printf("  %s: %s%n", labels[r], describe(flush));
                    storage.delete("bench", id, shared);
                    table.row(labels[r], Integer.toString(flush.peakWriters().getOrDefault("L2", 0)), TextTable.seconds(flush.timeToDurable()),
                            TextTable.seconds(longest), over + " of " + flush.writes().size(), TextTable.mib(sampler.peak.get()),
                            TextTable.mib(bytes));
                    rows.add(new FlushRow(labels[r], flush.peakWriters().getOrDefault("L2", 0), seconds(flush.timeToDurable()), seconds(longest),
                            over, flush.writes().size(), sampler.peak.get(), bytes, flush.writes().stream().map(w -> Map.<String, Object>of(
                                    "vm", w.vm(), "queuedS", seconds(w.queued()), "tookS", seconds(w.took()), "bytes", w.bytes())).toList()));
                }
                out.println();
                out.print(table.render());
                out.println("Each write is timed from its start to its stream verified (read back); 'writes over timeout' counts those"
                        + " longer than " + TextTable.seconds(timeout) + ". " + Runtime.getRuntime().availableProcessors() + " host cores.");
                Path json = new BenchDocument("mekha bench-flush --vms " + vms + " --memory " + memory + " --fill " + fill + " --writers "
                        + writers + " --timeout " + timeout + " (target: " + target + ")", BenchVcCommand.machine())
                        .with("writeTimeoutS", seconds(timeout)).with("rows", rows).write(outDir, "flush-scheduler.json");
                Map<String, Map<String, Double>> bars = new java.util.LinkedHashMap<>();
                for (FlushRow row : rows) {
                    Map<String, Double> v = new java.util.LinkedHashMap<>();
                    v.put("time to all durable", row.timeToDurableS());
                    v.put("longest write", row.longestWriteS());
                    v.put("write timeout", seconds(timeout));
                    bars.put(row.run(), v);
                }
                Path png = outDir.resolve("flush-scheduler.png");
                BenchCharts.bars(png, "Flushing " + vms + " VMs to one throttled shared target", "seconds", bars,
                        List.of("time to all durable", "longest write", "write timeout"));
                out.printf("Wrote %s and %s.%n", json, png);
            }
            return 0;
        } finally {
            servers.forEach(AgentHttpServer::close);
            services.forEach(AgentService::close);
        }
    }

    private static double seconds(Duration d) {
        return d.toNanos() / 1e9;
    }

    private static String describe(FlushReport flush) {
        StringBuilder s = new StringBuilder();
        flush.writes().forEach(w -> s.append(w.vm()).append(" queued ").append(TextTable.seconds(w.queued())).append(" took ")
                .append(TextTable.seconds(w.took())).append("; "));
        return s.toString();
    }

    private static void awaitFilled(List<AgentService> services, List<String> names) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
        for (AgentService service : services) {
            for (var vm : service.vms()) {
                while (DirtierLog.lastRound(Files.readAllLines(Path.of(vm.consolePath()))) < 1) {
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException("VM " + vm.name() + " did not fill its memory in 10 minutes");
                    }
                    Thread.sleep(500);
                }
            }
        }
    }

    private static void syncAndSettle() throws Exception {
        new ProcessBuilder("sync").inheritIO().start().waitFor();
        Thread.sleep(1000);
    }

    /** Samples the host's dirty and writeback page cache: memory the writes hold on the host. */
    private static final class PageCacheSampler {
        final AtomicLong peak = new AtomicLong();
        private volatile boolean running = true;
        private Thread thread;

        void start() {
            thread = new Thread(() -> {
                while (running) {
                    peak.accumulateAndGet(dirtyAndWriteback(), Math::max);
                    try {
                        Thread.sleep(50);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "page-cache-sampler");
            thread.setDaemon(true);
            thread.start();
        }

        void stop() throws InterruptedException {
            running = false;
            thread.join();
        }

        private static long dirtyAndWriteback() {
            try {
                long kib = 0;
                for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                    if (line.startsWith("Dirty:") || line.startsWith("Writeback:")) {
                        kib += Long.parseLong(line.replaceAll("[^0-9]", ""));
                    }
                }
                return kib * 1024;
            } catch (Exception e) {
                return 0;
            }
        }
    }
}
