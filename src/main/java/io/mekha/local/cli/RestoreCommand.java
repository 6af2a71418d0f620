package io.mekha.local.cli;

import io.mekha.local.InvalidSpecException;
import io.mekha.local.LocalVcState;
import io.mekha.local.Reports;
import io.mekha.model.TimePolicy;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.Coordinator;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mekha restore [VC] ID}: restarts every VM of a local VC from a checkpoint, together. */
@Command(name = "restore", mixinStandardHelpOptions = true,
        description = "Restart every VM of a local virtual cluster from a checkpoint (the VMs' current QEMUs are replaced).")
public class RestoreCommand extends CliCommand implements Callable<Integer> {

    @Option(names = "--time-policy", description = "Virtual, Step or Slew (default: the checkpoint's)")
    String timePolicy;

    @Option(names = "--slew-period", defaultValue = "30s", description = "how long Slew may take to reach host time (default: ${DEFAULT-VALUE})")
    String slewPeriod;

    @Option(names = "--from", description = "the level to try first: L0 (memory), L1 (node disk) or L2 (shared); slower levels are"
            + " tried if it cannot serve (default: the fastest that holds the checkpoint)")
    String from;

    @Mixin
    Level2Options level2;

    @Mixin
    ProgressOption progress;

    @Parameters(arity = "1..2", description = "[VC] CHECKPOINT: the VC (default: the only one up) and the checkpoint id")
    List<String> args;

    @Override
    public Integer call() throws Exception {
        ProgressDisplay.Style style = progress.style();
        String vc = args.size() == 2 ? args.get(0) : null;
        String checkpoint = args.get(args.size() - 1);
        StorageLevel first;
        try {
            first = from == null ? null : StorageLevel.parse(from);
        } catch (IllegalArgumentException e) {
            throw new InvalidSpecException("--from: " + e.getMessage());
        }
        LocalVcState state = LocalVcState.find(vc);
        StorageTarget shared = level2.target();
        if (shared == null) {
            shared = state.level2(checkpoint).orElse(null);
            shared = shared == null ? null : Level2Options.withCredentials(shared);
        }
        AgentClient agent = state.client();
        try (Coordinator coordinator = new Coordinator(List.of(agent), Clock.systemUTC());
             CheckpointStorage storage = new CheckpointStorage(List.of(agent), Clock.systemUTC())) {
            CheckpointStorage.RestoreReport report;
            // from L1 or L2 every VM's files are read back (verified), then fed to its new QEMU: two parts per VM
            int vms = agent.vms().size();
            try (ProgressDisplay shown = ProgressDisplay.start(out(), style, "restore " + checkpoint, ProgressSources.transfers(List.of(agent),
                    checkpoint, p -> p.startsWith("verify at ") || p.startsWith("load from "), 2 * vms))) {
                report = storage.restore(state.name(), checkpoint, first, shared,
                        timePolicy == null ? null : TimePolicy.parse(timePolicy), java.time.Duration.parse("PT" + slewPeriod.toUpperCase()),
                        step -> shown.println("==> " + step));
            }
            out().println();
            report.skipped().forEach((level, why) -> out().println("passed over " + level + ": " + why));
            out().println("restarted from " + report.level() + " (" + report.level().description() + ")");
            out().print(Reports.restart(report.restart()));
        }
        return 0;
    }
}
