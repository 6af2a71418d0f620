package io.mekha.local.cli;

import io.mekha.local.LocalVcState;
import io.mekha.local.Reports;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.RestartReport;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.Callable;
import io.mekha.agent.time.TimePolicy;
import picocli.CommandLine.Command;
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

    @Parameters(arity = "1..2", description = "[VC] CHECKPOINT: the VC (default: the only one up) and the checkpoint id")
    List<String> args;

    @Override
    public Integer call() throws Exception {
        String vc = args.size() == 2 ? args.get(0) : null;
        String checkpoint = args.get(args.size() - 1);
        LocalVcState state = LocalVcState.find(vc);
        try (Coordinator coordinator = new Coordinator(List.of(state.client()), Clock.systemUTC())) {
            RestartReport report = coordinator.restart(checkpoint, timePolicy == null ? null : TimePolicy.parse(timePolicy),
                    java.time.Duration.parse("PT" + slewPeriod.toUpperCase()), step -> out().println("==> " + step));
            out().println();
            out().print(Reports.restart(report));
        }
        return 0;
    }
}
