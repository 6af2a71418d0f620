package io.mekha.local.cli;

import io.mekha.model.MemorySize;
import io.mekha.local.TextTable;
import io.mekha.local.VcWorkload;
import io.mekha.local.bench.BenchCharts;
import io.mekha.local.bench.BenchDocument;
import io.mekha.local.bench.VcBench;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code mekha bench-recovery}: automatic recovery of a VC after a VM's QEMU is killed, from each level in turn (L0, L1,
 * L2), then after a node is lost, from the level-0 copies its partner holds: the time from the failure to it being seen,
 * and to every VM running again, and the work lost. Writes
 * {@code <out>/recovery.json} (another workload: {@code recovery-<workload>.json}) and a figure beside it (.png).
 */
@Command(name = "bench-recovery", mixinStandardHelpOptions = true,
        description = "Kill a VM of a protected VC and time its automatic recovery from L0, L1 and L2, then lose a node and time the"
                + " recovery from its partner's level-0 copies (detection, restore, work lost).")
public class BenchRecoveryCommand implements Callable<Integer> {

    @Option(names = "--workload", defaultValue = "ring", description = "the VC's workload (default: ${DEFAULT-VALUE})")
    String workload;

    @Option(names = "--vms", defaultValue = "3", description = "VMs in the VC (default: ${DEFAULT-VALUE})")
    int vms;

    @Option(names = "--memory", defaultValue = "256Mi", description = "guest memory (default: ${DEFAULT-VALUE})")
    String memory;

    @Option(names = "--nodes", defaultValue = "2", description = "nodes (agents in this process), 1 or 2; with 2 the last VM runs on n2,"
            + " and n2 is lost at the end (default: ${DEFAULT-VALUE})")
    int nodes;

    @Option(names = "--out", defaultValue = "docs/bench", description = "where the JSON and the figure go (default: ${DEFAULT-VALUE})")
    Path out;

    @Mixin
    RuntimeOptions runtime;

    private final PrintStream stdout = System.out;

    @Override
    public Integer call() throws Exception {
        VcWorkload kind = VcWorkload.parse(workload);
        long memoryMiB = MemorySize.parseMiB(memory);
        stdout.printf("Recovery benchmark: %d VMs of %d MiB on %d node(s) of one host (%s), %s; one checkpoint flushed to L1 and L2, then a"
                + " VM's QEMU killed and the VC recovered by itself from L0, L1, L2 in turn%s.%n", vms, memoryMiB, nodes, runtime.accelerator,
                kind.label(), nodes == 2 ? "; then a second checkpoint held on partner nodes too, node n2 lost (its agent, its VM and the"
                + " copies it held) and the VC recovered from the partner's copies" : "");
        List<VcBench.RecoveryRow> rows;
        Path level2 = Files.createTempDirectory("mekha-bench-recovery-l2-");
        try (VcBench bench = new VcBench(kind, vms, memoryMiB, runtime.config("mekha-bench-recovery-"), nodes, stdout::println)) {
            bench.boot(Duration.ofSeconds(6));
            rows = bench.recoveries(level2);
        }
        TextTable table = new TextTable("level", "VM lost", "seen after", "running after", "restore", "work lost", "exact");
        for (VcBench.RecoveryRow r : rows) {
            table.row(r.level(), r.failedVm(), ms(r.detectionMs()), ms(r.runningMs()), ms(r.restoreMs()), ms(r.workLostMs()), r.exact() ? "yes" : "NO");
        }
        table.render().lines().forEach(l -> stdout.println("  " + l));
        String name = kind == VcWorkload.RING ? "recovery" : "recovery-" + kind.label();
        Path jsonFile = new BenchDocument("mekha bench-recovery --workload " + workload + " --vms " + vms + " --memory " + memory + " --nodes " + nodes,
                BenchVcCommand.machine()).with("rows", rows).write(out, name + ".json");
        Map<String, Map<String, Double>> bars = new LinkedHashMap<>();
        for (VcBench.RecoveryRow r : rows) {
            Map<String, Double> v = new LinkedHashMap<>();
            v.put("failure seen", r.detectionMs() / 1000);
            v.put("restore", r.restoreMs() / 1000);
            v.put("every VM running again", r.runningMs() / 1000);
            v.put("work lost (cut to failure)", r.workLostMs() / 1000);
            bars.put(r.level(), v);
        }
        Path png = out.resolve(name + ".png");
        BenchCharts.bars(png, "Automatic recovery after a VM's QEMU or a node is lost, by level (" + kind.label() + ", " + vms + " VMs of " + memoryMiB
                + " MiB)", "seconds after the failure", bars, List.of("failure seen", "restore", "every VM running again", "work lost (cut to failure)"));
        stdout.printf("Wrote %s and %s.%n", jsonFile, png);
        return rows.stream().allMatch(VcBench.RecoveryRow::exact) ? 0 : 1;
    }

    private static String ms(double v) {
        return String.format(java.util.Locale.ROOT, "%.0f ms", v);
    }
}
