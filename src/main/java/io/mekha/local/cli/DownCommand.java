package io.mekha.local.cli;

import io.mekha.local.LocalVcLauncher;
import io.mekha.local.LocalVcState;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code mekha down [VC]}: stops a local VC's VMs and agent. */
@Command(name = "down", mixinStandardHelpOptions = true, description = "Stop a local virtual cluster and forget it.")
public class DownCommand extends CliCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", description = "the VC (default: the only one that is up)")
    String vc;

    @Override
    public Integer call() throws Exception {
        LocalVcState state = LocalVcState.find(vc);
        LocalVcLauncher.down(state, line -> out().println("==> " + line));
        out().println("VC '" + state.name() + "' is down.");
        return 0;
    }
}
