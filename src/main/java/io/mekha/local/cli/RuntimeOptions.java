package io.mekha.local.cli;

import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.RuntimeConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The options of every command that runs VMs in this process: accelerator and work directory. */
final class RuntimeOptions {

    @Option(names = "--accelerator", defaultValue = "tcg", description = "tcg, kvm or auto (default: ${DEFAULT-VALUE})")
    String accelerator;

    @Option(names = "--work-dir", description = "where VM consoles, sockets and logs go (default: a new directory under /tmp)")
    Path workDir;

    /** The runtime settings, creating the work directory (a fresh {@code /tmp/<prefix>...} when none was given). */
    RuntimeConfig config(String prefix) throws IOException {
        Path work = workDir != null ? Files.createDirectories(workDir) : Files.createTempDirectory(prefix);
        return RuntimeConfig.defaults(work).withAccelerator(Accelerator.parse(accelerator));
    }
}
