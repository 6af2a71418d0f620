package io.mekha.local.cli;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.local.LocalVcState;
import io.mekha.local.TextTable;
import io.mekha.protocol.CheckpointReport;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code mekha status [VC]}: the VMs of a local VC and its checkpoints. */
@Command(name = "status", mixinStandardHelpOptions = true, description = "Show a local virtual cluster's VMs and checkpoints.")
public class StatusCommand extends CliCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", description = "the VC (default: the only one that is up)")
    String vc;

    @Override
    public Integer call() throws Exception {
        LocalVcState state = LocalVcState.find(vc);
        out().println("VC '" + state.name() + "', agent " + state.agent().uri() + " (pid " + state.agent().pid() + ")");
        TextTable vms = new TextTable("vm", "state", "pid", "accelerator", "in checkpoint", "console");
        for (VmInfo vm : state.client().vms()) {
            vms.row(vm.name(), vm.state(), vm.pid(), vm.accelerator(), vm.checkpoint(), vm.consolePath());
        }
        out().print(vms.render());
        TextTable checkpoints = new TextTable("checkpoint", "cut (Ts)", "VMs", "suspend skew", "resume skew", "held whole at");
        io.mekha.protocol.AgentClient agent = state.client();
        try (io.mekha.protocol.CheckpointStorage storage = new io.mekha.protocol.CheckpointStorage(List.of(agent), java.time.Clock.systemUTC())) {
            for (CheckpointReport report : state.checkpoints()) {
                io.mekha.storage.StorageTarget shared = state.level2(report.id()).orElse(null);
                List<io.mekha.storage.StorageLevel> levels = storage.holdings(state.name(),
                                shared == null ? null : Level2Options.withCredentials(shared), java.util.Map.of(report.id(), report.suspendAt()))
                        .stream().filter(h -> h.checkpoint().equals(report.id())).findFirst()
                        .map(io.mekha.protocol.CheckpointStorage.Holdings::complete).orElse(List.of());
                checkpoints.row(report.id(), report.suspendAt(), report.vms().size(), TextTable.ms(report.suspendSkew()),
                        TextTable.ms(report.resumeSkew()), levels.isEmpty() ? "nowhere (no longer restartable)" : levels.toString());
            }
        }
        out().println();
        out().print(checkpoints.render());
        return 0;
    }
}
