package io.mekha.local.cli;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.network.SegmentHub;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.local.GuestImage;
import io.mekha.local.Reports;
import io.mekha.local.RingCluster;
import io.mekha.local.RingReference;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.RestartReport;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The local-mode demo, Mekha's main job on one machine: a 3-VM virtual cluster running a
 * distributed TCP workload is checkpointed at one consistent cut (MTD, rendezvous suspend and
 * resume), every VM is then killed, the whole VC restarts from the checkpoint, and the
 * workload's results are checked against an uninterrupted run computed on the host.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Checkpoint a 3-VM virtual cluster running a TCP ring, crash every VM, restart the VC, verify.")
public class DemoCommand implements Callable<Integer> {

    @Option(names = "--vms", defaultValue = "3", description = "VMs in the virtual cluster (default: ${DEFAULT-VALUE})")
    int vmCount;

    @Option(names = "--steps", defaultValue = "300", description = "steps of the ring workload (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--mode", defaultValue = "MTD", description = "MTD or StopAndCopy (default: ${DEFAULT-VALUE})")
    String mode;

    @Mixin
    RuntimeOptions runtime;

    private final PrintStream out = System.out;

    @Override
    public Integer call() throws Exception {
        if (vmCount < 2 || vmCount > 8) {
            throw new IllegalArgumentException("--vms must be between 2 and 8, got " + vmCount);
        }
        TransferMode transferMode = TransferMode.parse(mode);
        GuestImage guest = GuestImage.locate().requireBuilt();
        RuntimeConfig config = runtime.config("mekha-demo-");
        Path work = config.workDir();
        RingCluster ring = new RingCluster(vmCount, steps, 30, 16, 4);
        BearerToken token = BearerToken.random();

        out.println("Mekha local demo: a " + vmCount + "-VM virtual cluster running a TCP ring workload, checkpointed at one"
                + " consistent cut (" + transferMode.displayName() + "), crashed, and restarted from the checkpoint.");
        out.println("Work directory: " + work);
        Progress progress = new Progress(out, 6);
        try (SegmentHub hub = SegmentHub.open("lan", 0);
             AgentService agent = new AgentService("local", new LocalVmRuntime(config), new RendezvousClock(Clock.systemUTC()));
             AgentHttpServer server = new AgentHttpServer(agent, token, new InetSocketAddress("127.0.0.1", 0)).start();
             Coordinator coordinator = new Coordinator(List.of(new AgentClient("local", server.uri(), token.header(),
                     Duration.ofSeconds(30))), Clock.systemUTC())) {
            AgentClient client = new AgentClient("local", server.uri(), token.header(), Duration.ofSeconds(30));
            List<VmSpec> specs = ring.specs(guest, hub.port(), 256);
            List<String> names = specs.stream().map(VmSpec::name).toList();

            progress.begin("booting " + vmCount + " VMs (256 MiB, " + config.accelerator() + ") on one L2 segment; agent at " + server.uri());
            for (VmSpec spec : specs) {
                client.startVm(spec);
            }
            progress.done("all booted");

            progress.begin("the ring workload runs across the VMs over TCP");
            long warm = awaitStep(client, names, 30);
            progress.done("step " + warm + " of " + steps);

            progress.begin("coordinated " + transferMode.displayName() + " checkpoint of the whole VC");
            out.println();
            CheckpointReport report = coordinator.checkpoint("demo-cp", names, CheckpointOptions.defaults().withMode(transferMode),
                    step -> progress.note(step));
            long atCheckpoint = minStep(client, names);
            Map<String, Long> reached = new LinkedHashMap<>();
            for (VmInfo vm : client.vms()) {
                reached.put(vm.name(), RingReference.lastStepReached(Files.readString(Path.of(vm.consolePath()))));
            }
            progress.done("done at step " + atCheckpoint);

            progress.begin("the VC runs on, then every VM crashes (SIGKILL)");
            long crashedAt = awaitStep(client, names, atCheckpoint + 40);
            Map<String, List<String>> before = consoles(client, names);
            for (VmInfo vm : client.vms()) {
                ProcessHandle.of(vm.pid()).ifPresent(p -> {
                    p.destroyForcibly();
                    p.onExit().join();
                });
            }
            progress.done("killed at step " + crashedAt);

            progress.begin("restarting the whole VC from checkpoint demo-cp");
            out.println();
            RestartReport restart = coordinator.restart("demo-cp", step -> progress.note(step));
            progress.done("every VM running again");

            progress.begin("letting the workload finish");
            awaitDone(client, names);
            Map<String, List<String>> after = consoles(client, names);
            progress.done("finished");

            long[][] reference = ring.reference();
            int compared = 0;
            int mismatches = 0;
            long firstAfter = Long.MAX_VALUE;
            boolean fromCut = true;
            boolean finished = true;
            for (String vm : names) {
                TreeMap<Long, Long> printed = RingReference.printed(after.get(vm), RingCluster.node(vm));
                compared += printed.size();
                mismatches += RingReference.mismatches(printed, reference, RingCluster.node(vm)).size();
                firstAfter = Math.min(firstAfter, printed.isEmpty() ? Long.MAX_VALUE : printed.firstKey());
                fromCut &= !printed.isEmpty() && printed.firstKey() <= reached.get(vm) + 1;
                finished &= !printed.isEmpty() && printed.lastKey() == steps;
                mismatches += RingReference.mismatches(RingReference.printed(before.get(vm), RingCluster.node(vm)), reference,
                        RingCluster.node(vm)).size();
            }
            out.println();
            out.println("Checkpoint:");
            out.print(Reports.checkpoint(report));
            out.println();
            out.println("Restart after the crash:");
            out.print(Reports.restart(restart));
            out.println();
            out.printf("Verification: the VC resumed at step %d (the checkpoint was taken by step %d, the crash came at step %d);%n",
                    firstAfter, atCheckpoint, crashedAt);
            out.printf("%d step sums printed after the restart compared with an uninterrupted run computed on the host: %d mismatches.%n",
                    compared, mismatches);
            for (String vm : client.vms().stream().map(VmInfo::name).toList()) {
                client.stopVm(vm);
            }
            if (mismatches == 0 && finished && report.barrierHeld() && fromCut) {
                out.println("VERIFIED: after every VM crashed, the virtual cluster restarted from its in-memory checkpoint and the"
                        + " distributed workload finished exactly as if nothing had happened.");
                return 0;
            }
            out.println("FAILED: the restarted workload does not match an uninterrupted run; consoles are in " + work);
            return 1;
        }
    }

    private static Map<String, List<String>> consoles(AgentClient client, List<String> names) throws Exception {
        Map<String, List<String>> consoles = new LinkedHashMap<>();
        for (VmInfo vm : client.vms()) {
            if (names.contains(vm.name())) {
                consoles.put(vm.name(), Files.readAllLines(Path.of(vm.consolePath())));
            }
        }
        return consoles;
    }

    private static long minStep(AgentClient client, List<String> names) throws Exception {
        long min = Long.MAX_VALUE;
        for (var entry : consoles(client, names).entrySet()) {
            TreeMap<Long, Long> printed = RingReference.printed(entry.getValue(), RingCluster.node(entry.getKey()));
            min = Math.min(min, printed.isEmpty() ? 0 : printed.lastKey());
        }
        return min;
    }

    private static long awaitStep(AgentClient client, List<String> names, long step) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
        long now;
        while ((now = minStep(client, names)) < step) {
            failOnRingError(client, names);
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the ring did not reach step " + step + " (at " + now + ")");
            }
            Thread.sleep(200);
        }
        return now;
    }

    private static void awaitDone(AgentClient client, List<String> names) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
        while (!consoles(client, names).values().stream().allMatch(lines -> lines.stream().anyMatch(l -> l.startsWith("RING done")))) {
            failOnRingError(client, names);
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the ring did not finish within 10 minutes");
            }
            Thread.sleep(250);
        }
    }

    private static void failOnRingError(AgentClient client, List<String> names) throws Exception {
        for (var entry : consoles(client, names).entrySet()) {
            for (String line : entry.getValue()) {
                if (line.contains("RING error")) {
                    throw new IllegalStateException(entry.getKey() + " reported: " + line);
                }
            }
        }
    }
}
