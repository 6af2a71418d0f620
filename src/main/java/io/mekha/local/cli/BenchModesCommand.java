package io.mekha.local.cli;

import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.runtime.QemuVm;
import io.mekha.agent.runtime.RuntimeConfig;
import io.mekha.agent.runtime.VmSpec;
import io.mekha.agent.shadow.ShadowCheckpoint;
import io.mekha.agent.shadow.ShadowCheckpointer;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.agent.transfer.ShadowTransfer;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.TransferFigures;
import io.mekha.agent.transfer.TransferMode;
import io.mekha.local.DirtierLog;
import io.mekha.local.GuestImage;
import io.mekha.local.MemorySize;
import io.mekha.local.TextTable;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
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

    @Mixin
    RuntimeOptions runtime;

    private final PrintStream out = System.out;

    @Override
    public Integer call() throws Exception {
        long memoryMiB = MemorySize.parseMiB(memory);
        long dirtyMiB = MemorySize.parseMiB(dirty);
        GuestImage guest = GuestImage.locate().requireBuilt();
        RuntimeConfig config = runtime.config("mekha-bench-");
        VmSpec spec = new VmSpec("bench", memoryMiB, 1, guest.kernel(), guest.initrd(), null,
                "dirtier -m " + dirtyMiB + " -d 16 -i 0", null, null, null, false);
        out.printf("Transfer modes: one %d MiB VM (%s) rewriting %d MiB continuously, %d checkpoints per mode, medians.%n",
                memoryMiB, config.accelerator(), dirtyMiB, repeat);
        TextTable table = new TextTable("mode", "paused (Mekha)", "paused (QEMU events)", "QEMU downtime", "bytes", "live stage", "total");
        try (LocalVmRuntime runtime = new LocalVmRuntime(config)) {
            QemuVm vm = runtime.start(spec);
            waitForWorkload(vm, dirtyMiB);
            ShadowCheckpointer checkpointer = new ShadowCheckpointer(runtime);
            for (TransferMode mode : TransferMode.values()) {
                List<TransferFigures> runs = new ArrayList<>();
                try {
                    for (int i = 0; i < repeat; i++) {
                        ShadowCheckpoint checkpoint = checkpointer.checkpoint(vm, mode, LiveStageBounds.defaults());
                        runs.add(checkpoint.figures());
                        checkpoint.discard();
                        out.printf("  %s run %d: paused %s%n", mode.displayName(), i + 1,
                                TextTable.ms(runs.get(i).mekhaPaused() != null ? runs.get(i).mekhaPaused() : runs.get(i).guestPaused()));
                    }
                } catch (TransferException e) {
                    if (mode == TransferMode.BACKGROUND_SNAPSHOT && !ShadowTransfer.offers(vm.qmp(), "background-snapshot")) {
                        table.row(mode.displayName(), "not offered by this QEMU", null, null, null, null, null);
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
            }
            vm.shutdown(Duration.ofSeconds(5));
        }
        out.println();
        out.print(table.render());
        out.println("QEMU " + qemuVersion(config) + ", " + Runtime.getRuntime().availableProcessors() + " host cores.");
        return 0;
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
