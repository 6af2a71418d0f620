package io.mekha.local.cli;

import io.mekha.agent.qemu.MigrationCapabilities;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.local.DirtierLog;
import io.mekha.local.EmbeddedNode;
import io.mekha.local.GuestImage;
import io.mekha.model.MemorySize;
import io.mekha.local.TextTable;
import io.mekha.local.bench.BenchCharts;
import io.mekha.local.bench.BenchDocument;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.ProtocolListener;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The transfer-mode figure: the same VM, running the same workload, checkpointed in each mode
 * several times; prints the median of each figure side by side.
 */
@Command(name = "bench-modes", mixinStandardHelpOptions = true,
        description = "Checkpoint one VM in each transfer mode and print paused time, QEMU downtime, bytes and total time.")
public class BenchModesCommand implements Callable<Integer> {

    @Option(names = "--memory", defaultValue = "1Gi", description = "guest memory (default: ${DEFAULT-VALUE})")
    String memory;

    @Option(names = "--dirty", defaultValue = "256Mi", description = "memory the workload keeps rewriting (default: ${DEFAULT-VALUE})")
    String dirty;

    @Option(names = "--repeat", defaultValue = "3", description = "checkpoints per mode; medians are printed (default: ${DEFAULT-VALUE})")
    int repeat;

    @Option(names = "--out", defaultValue = "docs/bench", description = "where the JSON and the figure go (default: ${DEFAULT-VALUE})")
    Path outDir;

    @Mixin
    RuntimeOptions runtime;

    /** One mode's medians (ms; null where the mode has no such figure) and every run's pause as Mekha saw it. */
    public record ModeRow(String mode, boolean offered, Double pausedMs, Double pausedByQemuEventsMs, Double qemuDowntimeMs, Long bytes,
                          Double liveStageMs, Double totalMs, List<Double> runsPausedMs) {}

    private final PrintStream out = System.out;

    @Override
    public Integer call() throws Exception {
        long memoryMiB = MemorySize.parseMiB(memory);
        long dirtyMiB = MemorySize.parseMiB(dirty);
        GuestImage guest = GuestImage.locate().requireBuilt();
        RuntimeConfig config = runtime.config("mekha-bench-");
        VmSpec spec = VmSpec.named("bench")
                .memoryMiB(memoryMiB).boot(guest.kernel(), guest.initrd()).workload("dirtier -m " + dirtyMiB + " -d 16 -i 0")
                .build();
        out.printf("Transfer modes: one %d MiB VM (%s) rewriting %d MiB continuously, %d checkpoints per mode, medians.%n",
                memoryMiB, config.accelerator(), dirtyMiB, repeat);
        TextTable table = new TextTable("mode", "paused (Mekha)", "paused (QEMU events)", "QEMU downtime", "bytes", "live stage", "total");
        List<ModeRow> rows = new ArrayList<>();
        try (EmbeddedNode node = EmbeddedNode.start(config)) {
            QemuVm vm = node.startVm(spec);
            waitForWorkload(vm, dirtyMiB);
            int seq = 0;
            for (TransferMode mode : TransferMode.values()) {
                List<TransferFigures> runs = new ArrayList<>();
                try {
                    for (int i = 0; i < repeat; i++) {
                        String id = "bench-" + (++seq);
                        runs.add(node.checkpoint(id, vm.name(), mode, LiveStageBounds.defaults().maxLive(), ProtocolListener.NONE).figures());
                        node.discard(id);
                        out.printf("  %s run %d: paused %s%n", mode.displayName(), i + 1,
                                TextTable.ms(runs.get(i).mekhaPaused() != null ? runs.get(i).mekhaPaused() : runs.get(i).guestPaused()));
                    }
                } catch (CheckpointFailedException e) {
                    if (mode == TransferMode.BACKGROUND_SNAPSHOT && !MigrationCapabilities.offers(vm.qmp(), "background-snapshot")) {
                        table.row(mode.displayName(), "not offered by this QEMU", null, null, null, null, null);
                        rows.add(new ModeRow(mode.displayName(), false, null, null, null, null, null, null, List.of()));
                        continue;
                    }
                    throw e;
                }
                table.row(mode.displayName(),
                        TextTable.ms(median(runs, TransferFigures::mekhaPaused)),
                        TextTable.ms(median(runs, TransferFigures::guestPaused)),
                        TextTable.ms(median(runs, TransferFigures::qemuDowntime)),
                        TextTable.mib(runs.stream().mapToLong(TransferFigures::bytesTransferred).sorted().toArray()[runs.size() / 2]),
                        TextTable.seconds(median(runs, TransferFigures::liveStage)),
                        TextTable.seconds(median(runs, TransferFigures::total)));
                rows.add(new ModeRow(mode.displayName(), true, ms(median(runs, TransferFigures::mekhaPaused)),
                        ms(median(runs, TransferFigures::guestPaused)), ms(median(runs, TransferFigures::qemuDowntime)),
                        runs.stream().mapToLong(TransferFigures::bytesTransferred).sorted().toArray()[runs.size() / 2],
                        ms(median(runs, TransferFigures::liveStage)), ms(median(runs, TransferFigures::total)),
                        runs.stream().map(r -> ms(r.mekhaPaused() != null ? r.mekhaPaused() : r.guestPaused())).toList()));
            }
            vm.shutdown(Duration.ofSeconds(5));
        }
        out.println();
        out.print(table.render());
        out.println("QEMU " + qemuVersion(config) + ", " + Runtime.getRuntime().availableProcessors() + " host cores.");
        Path json = new BenchDocument("mekha bench-modes --memory " + memory + " --dirty " + dirty + " --repeat " + repeat, BenchVcCommand.machine())
                .with("rows", rows).write(outDir, "transfer-modes.json");
        Map<String, Map<String, Double>> bars = new LinkedHashMap<>();
        for (ModeRow r : rows) {
            Map<String, Double> v = new LinkedHashMap<>();
            v.put("paused (Mekha)", r.pausedMs());
            v.put("paused (QEMU events)", r.pausedByQemuEventsMs());
            v.put("QEMU downtime", r.qemuDowntimeMs());
            bars.put(r.mode() + (r.offered() ? "" : " (not offered)"), v);
        }
        Path png = outDir.resolve("transfer-modes.png");
        BenchCharts.bars(png, "Pause by transfer mode (one " + memoryMiB + " MiB VM rewriting " + dirtyMiB + " MiB, medians of " + repeat + ")",
                "ms", bars, List.of("paused (Mekha)", "paused (QEMU events)", "QEMU downtime"));
        out.printf("Wrote %s and %s.%n", json, png);
        return 0;
    }

    private static Double ms(Duration d) {
        return d == null ? null : d.toNanos() / 1e6;
    }

    private static Duration median(List<TransferFigures> runs, Function<TransferFigures, Duration> figure) {
        List<Duration> values = runs.stream().map(figure).filter(d -> d != null).sorted(Comparator.naturalOrder()).toList();
        return values.isEmpty() ? null : values.get(values.size() / 2);
    }

    private static void waitForWorkload(QemuVm vm, long dirtyMiB) throws InterruptedException {
        // the dirtier touches its whole buffer once before its first round
        long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
        while (DirtierLog.lastRound(vm.console().lines()) < Math.max(5, dirtyMiB / 16) && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
    }

    private static String qemuVersion(RuntimeConfig config) {
        try {
            Process p = new ProcessBuilder(config.qemuBinary(), "--version").redirectErrorStream(true).start();
            String first = new String(p.getInputStream().readAllBytes()).lines().findFirst().orElse("?");
            p.waitFor();
            return first.replace("QEMU emulator version ", "");
        } catch (Exception e) {
            return "?";
        }
    }
}
