package io.mekha.local.cli;

import io.mekha.model.MemorySize;
import io.mekha.local.TextTable;
import io.mekha.local.VcWorkload;
import io.mekha.local.bench.BenchCharts;
import io.mekha.local.bench.BenchDocument;
import io.mekha.local.bench.VcBench;
import io.mekha.model.TransferMode;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The VC checkpoint benchmark: the same VC on one host under each workload, checkpointed in each
 * transfer mode in one run (and restarted from memory after each), side by side. Writes the rows to
 * {@code <out>/vc-checkpoint.json} and the largest pause per workload and mode to
 * {@code <out>/vc-checkpoint.png}.
 */
@Command(name = "bench-vc", mixinStandardHelpOptions = true,
        description = "Checkpoint one VC under several workloads in each transfer mode; pauses, skews, clock jumps side by side.")
public class BenchVcCommand implements Callable<Integer> {

    @Option(names = "--workloads", defaultValue = "memory-heavy,ring,chatty,idle,mixed", split = ",",
            description = "workloads to run (default: ${DEFAULT-VALUE})")
    List<String> workloads;

    @Option(names = "--modes", defaultValue = "MTD,StopAndCopy,BackgroundSnapshot", split = ",", description = "transfer modes (default: ${DEFAULT-VALUE})")
    List<String> modes;

    @Option(names = "--vms", defaultValue = "3", description = "VMs in the VC (default: ${DEFAULT-VALUE})")
    int vms;

    @Option(names = "--memory", defaultValue = "256Mi", description = "guest memory (default: ${DEFAULT-VALUE})")
    String memory;

    @Option(names = "--warm-up", defaultValue = "6", description = "seconds each workload runs before its first checkpoint (default: ${DEFAULT-VALUE})")
    int warmUpSeconds;

    @Option(names = "--out", defaultValue = "docs/bench", description = "where the JSON and the figure go (default: ${DEFAULT-VALUE})")
    Path out;

    @Mixin
    RuntimeOptions runtime;

    private final PrintStream stdout = System.out;

    @Override
    public Integer call() throws Exception {
        List<VcWorkload> kinds = workloads.stream().map(VcWorkload::parse).toList();
        List<TransferMode> transferModes = modes.stream().map(TransferMode::parse).toList();
        long memoryMiB = MemorySize.parseMiB(memory);
        stdout.printf("VC benchmark: %d VMs of %d MiB on one host (%s), %s in each of %s, restarted from memory after each.%n", vms, memoryMiB,
                runtime.accelerator, kinds.stream().map(VcWorkload::label).toList(), transferModes.stream().map(TransferMode::displayName).toList());
        List<VcBench.Row> rows = new ArrayList<>();
        for (VcWorkload kind : kinds) {
            stdout.printf("%n%s: %s%n", kind.label(), kind.description());
            try (VcBench bench = new VcBench(kind, vms, memoryMiB, runtime.config("mekha-bench-vc-"), stdout::println)) {
                bench.boot(Duration.ofSeconds(warmUpSeconds));
                for (TransferMode mode : transferModes) {
                    List<VcBench.Row> got = bench.checkpointCrashRestart(mode);
                    rows.addAll(got);
                    print(got);
                }
            }
        }
        Path jsonFile = new BenchDocument("mekha bench-vc --workloads " + String.join(",", workloads) + " --modes " + String.join(",", modes)
                + " --vms " + vms + " --memory " + memory, machine()).with("rows", rows).write(out, "vc-checkpoint.json");
        Map<String, Map<String, Double>> largestPause = new LinkedHashMap<>();
        for (VcBench.Row r : rows) {
            largestPause.computeIfAbsent(r.workload(), k -> new LinkedHashMap<>()).merge(r.mode(), r.pausedMs(), Math::max);
        }
        Path png = out.resolve("vc-checkpoint.png");
        BenchCharts.bars(png, "Largest pause per VM, by workload (" + vms + " VMs of " + memoryMiB + " MiB, one host)", "paused (ms)",
                largestPause, transferModes.stream().map(TransferMode::displayName).toList());
        stdout.printf("%nWrote %s and %s.%n", jsonFile, png);
        return rows.stream().allMatch(VcBench.Row::exact) ? 0 : 1;
    }

    private void print(List<VcBench.Row> rows) {
        VcBench.Row first = rows.get(0);
        TextTable table = new TextTable("vm", "stop sent", "stop took", "paused", "final transfer", "barrier wait", "Tr lead", "bytes", "live stage",
                "passes", "restarts", "clock jump", "QEMU CPU");
        for (VcBench.Row r : rows) {
            table.row(r.vm(), "+" + ms(r.stopSentMs()), ms(r.stopLatencyMs()), ms(r.pausedMs()), ms(r.finalTransferMs()), ms(r.barrierWaitMs()), ms(r.trLeadMs()), TextTable.mib(r.bytes()),
                    ms(r.liveStageMs()), r.passes(), r.liveRestarts(), r.clockJumpMs() == null ? "-" : ms(r.clockJumpMs()), ms(r.qemuCpuMs()));
        }
        stdout.printf("  %s: suspend skew %s, resume skew %s, clock distances moved %s after the checkpoint and %s after the restart; %s%n",
                first.mode(), ms(first.suspendSkewMs()), ms(first.resumeSkewMs()), ms(first.offsetChangeAfterCheckpointMs()),
                ms(first.offsetChangeAfterRestartMs()), first.exact() ? "the workload continued exactly" : "MISMATCH after the restart");
        stdout.printf("  complete %s after Ts (%s after Tr); guests' speed before the cut %s, from Tr to complete %s of their own;"
                + " level 0 holds %.0f MiB%n", ms(first.completeMs()), ms(first.copyWindowMs()), percent(first.guestRateBeforeCut()),
                percent(first.guestRateDuringCopy()), first.level0HeldMiB());
        table.render().lines().forEach(l -> stdout.println("    " + l));
    }

    private static String percent(double share) {
        return Double.isNaN(share) || Double.isInfinite(share) ? "-" : String.format("%.0f %%", 100 * share);
    }

    private static String ms(double value) {
        return Double.isNaN(value) ? "-" : String.format("%.1f ms", value);
    }

    static String machine() {
        String cpu = "?";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name")).findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("?");
        } catch (Exception ignored) {
            // the figure is still useful without it
        }
        return Runtime.getRuntime().availableProcessors() + " cores (" + cpu + "), " + qemuVersion();
    }

    static String qemuVersion() {
        try {
            Process p = new ProcessBuilder("qemu-system-x86_64", "--version").redirectErrorStream(true).start();
            String first = new String(p.getInputStream().readAllBytes()).lines().findFirst().orElse("?");
            p.waitFor();
            return first.replace("QEMU emulator version ", "QEMU ");
        } catch (Exception e) {
            return "QEMU ?";
        }
    }
}
