package io.mekha.local.cli;

import io.mekha.local.InvalidSpecException;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.CheckpointFailedException;
import io.quarkus.picocli.runtime.PicocliCommandLineFactory;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import picocli.CommandLine;

/** How the {@code mekha} command line reports failures: one readable line, no stack trace, for the errors users cause. */
@ApplicationScoped
public class CliSetup {

    @Produces
    CommandLine commandLine(PicocliCommandLineFactory factory) {
        return configure(factory.create());
    }

    /** Also used by tests that run commands in-process. */
    public static CommandLine configure(CommandLine commandLine) {
        return commandLine.setExecutionExceptionHandler((e, cmd, parsed) -> {
            boolean expected = e instanceof InvalidSpecException || e instanceof CheckpointFailedException
                    || e instanceof AgentCallException || e instanceof IllegalArgumentException || e instanceof IllegalStateException
                    || e instanceof java.io.IOException;
            cmd.getErr().println("mekha " + cmd.getCommandName() + ": " + e.getMessage());
            if (!expected) {
                e.printStackTrace(cmd.getErr());
            }
            return e instanceof InvalidSpecException || e instanceof IllegalArgumentException ? 2 : 1;
        });
    }

    public static CommandLine create() {
        return configure(new CommandLine(new MekhaCommand()));
    }
}
