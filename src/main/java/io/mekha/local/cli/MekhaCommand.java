package io.mekha.local.cli;

import io.quarkus.picocli.runtime.annotations.TopCommand;
import picocli.CommandLine.Command;

/** The {@code mekha} command line: the local mode, its demo and its benchmarks. */
@TopCommand
@Command(name = "mekha", mixinStandardHelpOptions = true, version = "mekha 0.1.0",
        description = "Coordinated in-memory checkpoint and restart of virtual clusters of QEMU VMs.",
        subcommands = {DemoCommand.class, UpCommand.class, StatusCommand.class, CheckpointCommand.class, RestoreCommand.class, ProtectCommand.class,
                DownCommand.class, SingleVmDemoCommand.class, BenchModesCommand.class, BenchFlushCommand.class, BenchVcCommand.class, BenchScaleCommand.class, BenchRecoveryCommand.class, ExecCommand.class, AgentCommand.class,
                io.mekha.operator.app.OperatorCommand.class, io.mekha.operator.cli.KubectlCommand.class})
public class MekhaCommand {}
