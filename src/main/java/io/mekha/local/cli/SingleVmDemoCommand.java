package io.mekha.local.cli;

import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.local.DirtierLog;
import io.mekha.local.EmbeddedNode;
import io.mekha.local.GuestImage;
import io.mekha.model.MemorySize;
import io.mekha.local.TextTable;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.protocol.ProtocolListener;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The single-VM demo: boots a VM running a deterministic workload, checkpoints it into an
 * in-memory shadow (the VC protocol with one VM, over the agent's HTTP API), lets it run on,
 * crashes it, restarts it from the shadow and checks that the workload continued exactly from the cut.
 */
@Command(name = "demo-vm", mixinStandardHelpOptions = true,
        description = "Checkpoint a running VM into an in-memory shadow, crash it, restart it from the shadow, verify.")
public class SingleVmDemoCommand implements Callable<Integer> {

    @Option(names = "--mode", defaultValue = "MTD", description = "transfer mode: MTD, StopAndCopy or BackgroundSnapshot (default: ${DEFAULT-VALUE})")
    String mode;

    @Option(names = "--memory", defaultValue = "256Mi", description = "guest memory (default: ${DEFAULT-VALUE})")
    String memory;

    @Mixin
    RuntimeOptions runtime;

    private final PrintStream out = System.out;

    @Override
    public Integer call() throws Exception {
        TransferMode transferMode = TransferMode.parse(mode);
        long memoryMiB = MemorySize.parseMiB(memory);
        GuestImage guest = GuestImage.locate().requireBuilt();
        RuntimeConfig config = runtime.config("mekha-demo-");
        Path work = config.workDir();
        long dirtyMiB = Math.max(16, memoryMiB * 3 / 8);
        VmSpec spec = VmSpec.named("vm1")
                .memoryMiB(memoryMiB).boot(guest.kernel(), guest.initrd()).workload("dirtier -m " + dirtyMiB + " -d 8 -i 0")
                .guestAgent(true).build();

        out.println("Mekha local demo: one VM checkpointed into an in-memory shadow (" + transferMode.displayName()
                + "), crashed, and restarted from the shadow.");
        out.println("Work directory: " + work);
        Progress progress = new Progress(out, 5);
        try (EmbeddedNode node = EmbeddedNode.start(config)) {
            progress.begin("booting vm1 (" + memoryMiB + " MiB, 1 vCPU, " + config.accelerator()
                    + ") with a workload that rewrites " + dirtyMiB + " MiB in rounds and hashes it");
            QemuVm vm = node.startVm(spec);
            progress.done("booted under " + vm.accelerator() + ", pid " + vm.pid());

            progress.begin("letting the workload run");
            long warm = awaitRound(vm, 20);
            progress.done("round " + warm);

            progress.begin(transferMode.displayName() + " checkpoint into a shadow QEMU");
            TransferFigures f = node.checkpoint("demo-vm", vm.name(), transferMode, LiveStageBounds.defaults().maxLive(),
                    ProtocolListener.NONE).figures();
            long roundAtCheckpoint = DirtierLog.lastRoundReached(vm.console().text());
            progress.done("paused " + TextTable.ms(f.mekhaPaused() != null ? f.mekhaPaused() : f.guestPaused())
                    + ", " + TextTable.mib(f.bytesTransferred()) + " sent");

            progress.begin("the VM runs on after the checkpoint, then crashes (SIGKILL)");
            awaitRound(vm, roundAtCheckpoint + 30);
            vm.kill();
            TreeMap<Long, String> before = DirtierLog.parse(vm.console().lines());
            progress.done("killed at round " + before.lastKey());

            progress.begin("restarting vm1 from its shadow");
            node.restart("demo-vm", ProtocolListener.NONE);
            QemuVm restarted = node.vm(vm.name());
            long first = awaitRound(restarted, 1);
            awaitRound(restarted, before.lastKey() + 10);
            TreeMap<Long, String> after = DirtierLog.parse(restarted.console().lines());
            progress.done("resumed at round " + after.firstKey() + ", now at round " + after.lastKey());

            TreeMap<Long, String[]> both = DirtierLog.overlap(before, after);
            long mismatches = both.values().stream().filter(h -> !h[0].equals(h[1])).count();
            boolean fromCut = after.firstKey() <= roundAtCheckpoint + 1;
            out.println();
            out.println(new TextTable("figure", "value")
                    .row("transfer mode", f.mode().displayName())
                    .row("paused (Mekha, stop to cont)", TextTable.ms(f.mekhaPaused()))
                    .row("paused (QEMU STOP to RESUME events)", TextTable.ms(f.guestPaused()))
                    .row("QEMU-reported downtime", TextTable.ms(f.qemuDowntime()))
                    .row("bytes to the shadow", TextTable.mib(f.bytesTransferred()))
                    .row("live stage", TextTable.seconds(f.liveStage()) + (f.passes() > 0 ? ", " + f.passes() + " passes, ended: " + f.liveEnd() : ""))
                    .row("checkpoint total", TextTable.seconds(f.total()))
                    .row("round at checkpoint (source)", roundAtCheckpoint)
                    .row("first round after restart", after.firstKey())
                    .row("rounds compared source vs restart", both.size())
                    .row("hash mismatches", mismatches)
                    .render());
            restarted.shutdown(Duration.ofSeconds(5));
            if (mismatches == 0 && both.size() > 0 && fromCut) {
                out.println("VERIFIED: after the crash, vm1 restarted from its in-memory checkpoint and continued the workload exactly"
                        + " (" + both.size() + " rounds hash-identical to the source's own).");
                return 0;
            }
            out.println("FAILED: the restarted workload does not match the source"
                    + (fromCut ? "" : " (it resumed later than the cut)") + "; consoles are in " + work);
            return 1;
        }
    }

    private static long awaitRound(QemuVm vm, long round) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        long now;
        while ((now = DirtierLog.lastRound(vm.console().lines())) < round) {
            if (System.nanoTime() > deadline || !vm.isAlive()) {
                throw new IllegalStateException("vm1 did not reach round " + round + " (at " + now + "); console tail:\n" + vm.console().tail(5));
            }
            Thread.sleep(50);
        }
        return now;
    }
}
