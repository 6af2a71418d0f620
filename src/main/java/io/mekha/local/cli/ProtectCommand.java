package io.mekha.local.cli;

import io.mekha.agent.api.Json;
import io.mekha.api.v1alpha1.KubeDuration;
import io.mekha.local.InvalidSpecException;
import io.mekha.local.LocalVcState;
import io.mekha.local.VcProtector;
import io.mekha.local.VirtualClusterFile;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.RecoveryBudget;
import io.mekha.storage.StorageTarget;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code mekha protect [VC]}: watches a local VC and, when one of its VMs fails (its QEMU exits, it is gone), restores the
 * whole VC from its newest complete checkpoint by itself; stops, with the reason, when the VC keeps failing.
 */
@Command(name = "protect", mixinStandardHelpOptions = true,
        description = "Watch a local virtual cluster and restore it by itself from its newest complete checkpoint when one of its VMs"
                + " fails. Runs in the foreground; every step is printed, and the recoveries are kept in the VC's state"
                + " (recoveries.json). Exit 3 when recovery stops (the VC keeps failing, or has no checkpoint).")
public class ProtectCommand extends CliCommand implements Callable<Integer> {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss.SSS");

    @Parameters(arity = "0..1", description = "the VC (default: the only one up)")
    String vc;

    @Option(names = "--max-recoveries", defaultValue = "3", description = "recoveries allowed within the window (default: ${DEFAULT-VALUE})")
    int maxRecoveries;

    @Option(names = "--window", defaultValue = "10m", description = "the window of --max-recoveries (default: ${DEFAULT-VALUE})")
    String window;

    @Option(names = "--backoff", defaultValue = "2s", description = "the wait after a recovery before the next one, doubling each time"
            + " (default: ${DEFAULT-VALUE})")
    String backoff;

    @Option(names = "--max-backoff", defaultValue = "1m", description = "the longest backoff (default: ${DEFAULT-VALUE})")
    String maxBackoff;

    @Option(names = "--poll", defaultValue = "250ms", description = "how often the VMs are looked at (default: ${DEFAULT-VALUE})")
    String poll;

    @Override
    public Integer call() throws Exception {
        RecoveryBudget budget;
        VcProtector.Settings settings;
        try {
            budget = new RecoveryBudget(maxRecoveries, KubeDuration.parse("--window", window, null), KubeDuration.parse("--backoff", backoff, null),
                    KubeDuration.parse("--max-backoff", maxBackoff, null));
            settings = new VcProtector.Settings(KubeDuration.parse("--poll", poll, null), Duration.ofSeconds(2));
        } catch (IllegalArgumentException e) {
            throw new InvalidSpecException(e.getMessage());
        }
        LocalVcState state = LocalVcState.find(vc);
        List<String> vms = VirtualClusterFile.load(state.specFile()).vms().stream().map(VmSpec::name).toList();
        AgentClient agent = state.client();
        Path history = state.dir().resolve("recoveries.json");
        try (CheckpointStorage storage = new CheckpointStorage(List.of(agent), Clock.systemUTC())) {
            VcProtector protector = new VcProtector(state.name(), List.of(agent), vms, () -> {
                try {
                    return state.checkpoints();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }, id -> level2(state, id), storage, settings, budget, Clock.systemUTC(), this::say);
            VcProtector.Outcome outcome;
            try {
                // the history is on disk after every recovery: a protect stopped with ^C keeps it
                outcome = protector.run(() -> !Thread.currentThread().isInterrupted(),
                        r -> write(history, new VcProtector.Outcome(protector.history(), null)));
            } catch (InterruptedException e) {
                outcome = new VcProtector.Outcome(protector.history(), null);
            }
            write(history, outcome);
            if (outcome.stoppedBecause() != null) {
                err().println("mekha protect: " + outcome.stoppedBecause());
                return 3;
            }
        }
        return 0;
    }

    private static void write(Path file, VcProtector.Outcome outcome) {
        try {
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            Files.writeString(tmp, Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(outcome));
            Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot keep the recovery history in " + file + ": " + e.getMessage(), e);
        }
    }

    private StorageTarget level2(LocalVcState state, String checkpoint) {
        try {
            StorageTarget target = state.level2(checkpoint).orElse(null);
            return target == null ? null : Level2Options.withCredentials(target);
        } catch (IOException | InvalidSpecException e) {
            say("level 2 of " + checkpoint + " not usable: " + e.getMessage());
            return null;
        }
    }

    private void say(String line) {
        out().println(LocalTime.now(ZoneId.systemDefault()).format(TIME) + " " + line);
        out().flush();
    }
}
