package io.mekha.local.cli;

import io.mekha.agent.api.AgentDtos.ExecRequest;
import io.mekha.agent.api.AgentDtos.ExecResult;
import io.mekha.local.InvalidSpecException;
import io.mekha.local.LocalVcState;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code mekha exec [--vc VC] VM -- COMMAND...}: runs a command in a VM's guest through its guest
 * agent and prints its output; exits with the command's exit code.
 */
@Command(name = "exec", mixinStandardHelpOptions = true,
        description = "Run a command in a VM of a local virtual cluster (through qemu-guest-agent) and print its output.")
public class ExecCommand extends CliCommand implements Callable<Integer> {

    @Option(names = "--vc", description = "the VC (default: the only one that is up)")
    String vc;

    @Option(names = "--timeout", defaultValue = "60s", description = "how long to wait for the command (default: ${DEFAULT-VALUE})")
    String timeout;

    @Parameters(index = "0", description = "the VM")
    String vm;

    @Parameters(index = "1..*", arity = "1..*", description = "the command: one shell command line, or a program and its arguments")
    List<String> command;

    /** One word: a shell command line as it is. Several: each word quoted, so the guest's shell sees the same words. */
    static String shellLine(List<String> words) {
        if (words.size() == 1) {
            return words.get(0);
        }
        StringBuilder line = new StringBuilder();
        for (String word : words) {
            line.append(line.length() == 0 ? "" : " ").append('\'').append(word.replace("'", "'\\''")).append('\'');
        }
        return line.toString();
    }

    @Override
    public Integer call() throws Exception {
        Duration wait;
        try {
            wait = Duration.parse("PT" + timeout.toUpperCase());
        } catch (RuntimeException e) {
            throw new InvalidSpecException("--timeout '" + timeout + "': write it like 30s or 5m");
        }
        List<String> argv = command.get(0).startsWith("/") ? command : List.of("/bin/sh", "-c", shellLine(command));
        LocalVcState state = LocalVcState.find(vc);
        ExecResult result = state.client().exec(vm, new ExecRequest(argv, null, wait));
        out().print(result.stdout());
        err().print(result.stderr());
        out().flush();
        err().flush();
        if (result.exitCode() == null) {
            throw new InvalidSpecException("the command was still running after " + timeout + " (it goes on in the guest)");
        }
        return result.exitCode();
    }
}
