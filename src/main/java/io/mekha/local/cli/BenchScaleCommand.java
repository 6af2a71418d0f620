package io.mekha.local.cli;

import io.mekha.local.TextTable;
import io.mekha.local.bench.BenchCharts;
import io.mekha.local.bench.BenchDocument;
import io.mekha.local.bench.ScaleBench;
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
import picocli.CommandLine.Option;

/**
 * The coordinator at scale: real agents with simulated VMs in one JVM, N of them, checkpointed a few
 * times each; suspend and resume skew, barrier-to-Tr, calls per second and the coordinator's CPU
 * against N. Writes {@code <out>/coordinator-scale.json} and {@code <out>/coordinator-scale.png}.
 */
@Command(name = "bench-scale", mixinStandardHelpOptions = true,
        description = "Run the coordinator over many simulated nodes; skews, barrier-to-Tr, calls and CPU against their number.")
public class BenchScaleCommand implements Callable<Integer> {

    @Option(names = "--agents", defaultValue = "64,256,1024", split = ",", description = "node counts (default: ${DEFAULT-VALUE})")
    List<Integer> counts;

    @Option(names = "--capture-ms", defaultValue = "40", description = "a VM's capture takes from half to 3/2 of this (default: ${DEFAULT-VALUE})")
    int captureMs;

    @Option(names = "--repeat", defaultValue = "3", description = "checkpoints per count; medians are printed (default: ${DEFAULT-VALUE})")
    int repeat;

    @Option(names = "--out", defaultValue = "docs/bench", description = "where the JSON and the figure go (default: ${DEFAULT-VALUE})")
    Path out;

    private final PrintStream stdout = System.out;

    @Override
    public Integer call() throws Exception {
        stdout.printf("Coordinator scale: N nodes in this JVM (real agents and HTTP, one simulated VM each, captures %d-%d ms), %d checkpoints each.%n",
                captureMs / 2, captureMs * 3 / 2, repeat);
        List<ScaleBench.Result> all = new ArrayList<>();
        List<ScaleBench.Result> medians = new ArrayList<>();
        TextTable table = new TextTable("nodes", "suspend skew", "resume skew", "barrier to Tr", "heard", "Tr lead", "longest pause", "calls/s", "calls",
                "coordinator CPU", "checkpoint");
        for (int n : counts) {
            Path work = Files.createTempDirectory("mekha-scale-");
            List<ScaleBench.Result> runs = new ArrayList<>();
            try (ScaleBench bench = new ScaleBench(n, Duration.ofMillis(captureMs), work)) {
                bench.run("warm-up"); // the JIT, the connections
                for (int i = 0; i < repeat; i++) {
                    ScaleBench.Result r = bench.run("scale-" + i);
                    runs.add(r);
                    stdout.printf("  %d nodes, run %d: suspend skew %.2f ms, barrier to Tr %.2f ms (heard %.2f + lead %.2f)%n", n, i + 1,
                            r.suspendSkewMs(), r.barrierToTrMs(), r.heardMs(), r.trLeadMs());
                }
            }
            all.addAll(runs);
            ScaleBench.Result m = median(runs);
            medians.add(m);
            table.row(n, ms(m.suspendSkewMs()), ms(m.resumeSkewMs()), ms(m.barrierToTrMs()), ms(m.heardMs()), ms(m.trLeadMs()), ms(m.pauseMaxMs()), String.format("%.0f", m.callsPerSecond()),
                    m.calls(), ms(m.coordinatorCpuMs()), ms(m.checkpointMs()));
        }
        stdout.println();
        stdout.print(table.render());
        new BenchDocument("mekha bench-scale --agents " + counts.stream().map(String::valueOf).reduce((a, b) -> a + "," + b).orElse("")
                + " --capture-ms " + captureMs + " --repeat " + repeat, Runtime.getRuntime().availableProcessors() + " cores, "
                + System.getProperty("java.vm.name") + " " + System.getProperty("java.version"))
                .with("medians", medians).with("runs", all).write(out, "coordinator-scale.json");
        Map<String, Map<String, Double>> bars = new LinkedHashMap<>();
        for (ScaleBench.Result m : medians) {
            Map<String, Double> v = new LinkedHashMap<>();
            v.put("suspend skew", m.suspendSkewMs());
            v.put("resume skew", m.resumeSkewMs());
            v.put("barrier to Tr", m.barrierToTrMs());
            bars.put(m.agents() + " nodes", v);
        }
        BenchCharts.bars(out.resolve("coordinator-scale.png"), "The coordinator against the number of nodes (medians)", "ms", bars,
                List.of("suspend skew", "resume skew", "barrier to Tr"));
        stdout.printf("Wrote %s and %s.%n", out.resolve("coordinator-scale.json"), out.resolve("coordinator-scale.png"));
        return 0;
    }

    private static ScaleBench.Result median(List<ScaleBench.Result> runs) {
        List<ScaleBench.Result> sorted = new ArrayList<>(runs);
        sorted.sort((a, b) -> Double.compare(a.barrierToTrMs(), b.barrierToTrMs()));
        ScaleBench.Result mid = sorted.get(sorted.size() / 2);
        return new ScaleBench.Result(mid.agents(), med(runs, ScaleBench.Result::suspendSkewMs), med(runs, ScaleBench.Result::resumeSkewMs),
                med(runs, ScaleBench.Result::barrierToTrMs), med(runs, ScaleBench.Result::heardMs), med(runs, ScaleBench.Result::trLeadMs),
                med(runs, ScaleBench.Result::pauseMaxMs), med(runs, ScaleBench.Result::callsPerSecond),
                mid.calls(), med(runs, ScaleBench.Result::coordinatorCpuMs), med(runs, ScaleBench.Result::checkpointMs), mid.stageMs());
    }

    private static double med(List<ScaleBench.Result> runs, java.util.function.ToDoubleFunction<ScaleBench.Result> f) {
        double[] v = runs.stream().mapToDouble(f).sorted().toArray();
        return v[v.length / 2];
    }

    private static String ms(double v) {
        return String.format("%.2f ms", v);
    }
}
