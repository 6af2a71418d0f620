package io.mekha.local.cli;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.local.LocalVcState;
import io.mekha.local.TextTable;
import io.mekha.protocol.CheckpointReport;
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
        TextTable checkpoints = new TextTable("checkpoint", "cut (Ts)", "VMs", "suspend skew", "resume skew");
        for (CheckpointReport report : state.checkpoints()) {
            checkpoints.row(report.id(), report.suspendAt(), report.vms().size(), TextTable.ms(report.suspendSkew()),
                    TextTable.ms(report.resumeSkew()));
        }
        out().println();
        out().print(checkpoints.render());
        return 0;
    }
}
