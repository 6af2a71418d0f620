package io.mekha.local.cli;

import io.mekha.agent.qemu.Accelerator;
import io.mekha.local.LocalVcLauncher;
import io.mekha.local.LocalVcState;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mekha up FILE}: brings a local VC up from its description. */
@Command(name = "up", mixinStandardHelpOptions = true, description = "Boot a virtual cluster from a YAML description (local mode).")
public class UpCommand extends CliCommand implements Callable<Integer> {

    @Parameters(index = "0", description = "the VC description (YAML)")
    Path file;

    @Option(names = "--accelerator", description = "override the file's accelerator: tcg, kvm or auto")
    String accelerator;

    @Override
    public Integer call() throws Exception {
        LocalVcState state = LocalVcLauncher.up(file, accelerator == null ? null : Accelerator.parse(accelerator),
                line -> out().println("==> " + line));
        out().println("VC '" + state.name() + "' is up. Next: mekha status, mekha checkpoint, mekha restore <id>, mekha down");
        return 0;
    }
}
