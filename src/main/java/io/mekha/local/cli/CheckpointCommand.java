package io.mekha.local.cli;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.time.TimePolicy;
import io.mekha.agent.transfer.TransferMode;
import io.mekha.local.LocalVcState;
import io.mekha.local.Reports;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.Coordinator;
import java.time.Clock;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mekha checkpoint [VC]}: a coordinated checkpoint of every VM of a local VC into shadows. */
@Command(name = "checkpoint", mixinStandardHelpOptions = true,
        description = "Take a coordinated checkpoint of a local virtual cluster (every VM at one consistent cut).")
public class CheckpointCommand extends CliCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", description = "the VC (default: the only one that is up)")
    String vc;

    @Option(names = "--mode", defaultValue = "MTD", description = "MTD or StopAndCopy (default: ${DEFAULT-VALUE})")
    String mode;

    @Option(names = "--id", description = "the checkpoint's id (default: cp-<time>)")
    String id;

    @Option(names = "--time-policy", defaultValue = "Virtual",
            description = "default time policy of restarts from this checkpoint: Virtual, Step or Slew (default: ${DEFAULT-VALUE})")
    String timePolicy;

    @Option(names = "--max-live", defaultValue = "30s", description = "live-stage bound per VM, e.g. 30s (default: ${DEFAULT-VALUE})")
    String maxLive;

    @Override
    public Integer call() throws Exception {
        LocalVcState state = LocalVcState.find(vc);
        AgentClient agent = state.client();
        List<String> vms = agent.vms().stream().map(VmInfo::name).toList();
        String checkpointId = id != null ? id
                : "cp-" + DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC).format(Clock.systemUTC().instant());
        Duration live = Duration.parse("PT" + maxLive.toUpperCase());
        CheckpointOptions options = CheckpointOptions.defaults().withMode(TransferMode.parse(mode)).withLiveBounds(live, live.plusSeconds(15))
                .withTimePolicy(TimePolicy.parse(timePolicy));
        try (Coordinator coordinator = new Coordinator(List.of(agent), Clock.systemUTC())) {
            CheckpointReport report = coordinator.checkpoint(checkpointId, vms, options, step -> out().println("==> " + step));
            state.saveCheckpoint(report);
            out().println();
            out().print(Reports.checkpoint(report));
            out().println("\nRestart the VC from it with: mekha restore " + state.name() + " " + checkpointId);
        }
        return 0;
    }
}
