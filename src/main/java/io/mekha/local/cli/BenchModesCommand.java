package io.mekha.local.cli;

import io.mekha.agent.qemu.MigrationCapabilities;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.local.DirtierLog;
import io.mekha.local.EmbeddedNode;
import io.mekha.local.GuestImage;
import io.mekha.local.MemorySize;
import io.mekha.local.TextTable;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.ProtocolListener;
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
        VmSpec spec = VmSpec.named("bench")
                .memoryMiB(memoryMiB).boot(guest.kernel(), guest.initrd()).workload("dirtier -m " + dirtyMiB + " -d 16 -i 0")
                .build();
        out.printf("Transfer modes: one %d MiB VM (%s) rewriting %d MiB continuously, %d checkpoints per mode, medians.%n",
                memoryMiB, config.accelerator(), dirtyMiB, repeat);
        TextTable table = new TextTable("mode", "paused (Mekha)", "paused (QEMU events)", "QEMU downtime", "bytes", "live stage", "total");
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
