package io.mekha.local;

import io.mekha.agent.api.Json;
import io.mekha.agent.server.BearerToken;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointReport;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

/**
 * What the local mode keeps about a VC that is up, so that separate {@code mekha} invocations
 * can find it: its description, its agent's address and token, and its checkpoints' reports.
 * Lives in {@code $MEKHA_STATE_DIR/<vc>} (default {@code ~/.local/state/mekha/<vc>}).
 */
public record LocalVcState(String name, Path dir) {

    /** The agent serving a VC. */
    public record AgentEndpoint(URI uri, long pid) {}

    public static Path root() {
        String property = System.getProperty("mekha.state.dir");
        if (property != null && !property.isBlank()) {
            return Path.of(property);
        }
        String explicit = System.getenv("MEKHA_STATE_DIR");
        if (explicit != null && !explicit.isBlank()) {
            return Path.of(explicit);
        }
        String xdg = System.getenv("XDG_STATE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".local", "state");
        return base.resolve("mekha");
    }

    public static LocalVcState of(String name) {
        return new LocalVcState(name, root().resolve(name));
    }

    /** The VC named, or the only one that is up; a clear error otherwise. */
    public static LocalVcState find(String name) throws InvalidSpecException {
        if (name != null) {
            LocalVcState state = of(name);
            if (!state.isUp()) {
                throw new InvalidSpecException("VC '" + name + "' is not up (no " + state.agentFile() + "); start it with: mekha up <file>");
            }
            return state;
        }
        List<LocalVcState> up = all();
        if (up.size() == 1) {
            return up.get(0);
        }
        throw new InvalidSpecException(up.isEmpty() ? "no VC is up; start one with: mekha up <file>"
                : "several VCs are up (" + up.stream().map(LocalVcState::name).toList() + "); name one");
    }

    public static List<LocalVcState> all() {
        if (!Files.isDirectory(root())) {
            return List.of();
        }
        try (Stream<Path> dirs = Files.list(root())) {
            return dirs.map(d -> new LocalVcState(d.getFileName().toString(), d)).filter(LocalVcState::isUp).sorted(
                    (a, b) -> a.name().compareTo(b.name())).toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    public boolean isUp() {
        return Files.isRegularFile(agentFile());
    }

    public Path specFile() {
        return dir.resolve("vc.yaml");
    }

    public Path tokenFile() {
        return dir.resolve("agent.token");
    }

    public Path agentFile() {
        return dir.resolve("agent.json");
    }

    public Path agentLog() {
        return dir.resolve("agent.log");
    }

    public Path vmsDir() {
        return dir.resolve("vms");
    }

    public Path checkpointsDir() {
        return dir.resolve("checkpoints");
    }

    public AgentEndpoint agent() throws IOException {
        return Json.mapper().readValue(agentFile().toFile(), AgentEndpoint.class);
    }

    public void writeAgent(AgentEndpoint endpoint) throws IOException {
        Json.mapper().writeValue(agentFile().toFile(), endpoint);
    }

    public AgentClient client() throws IOException {
        return new AgentClient("local", agent().uri(), BearerToken.read(tokenFile()).header(), Duration.ofSeconds(30));
    }

    public void saveCheckpoint(CheckpointReport report) throws IOException {
        Files.createDirectories(checkpointsDir());
        Path tmp = checkpointsDir().resolve(report.id() + ".json.tmp");
        Json.mapper().writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), report);
        Files.move(tmp, checkpointsDir().resolve(report.id() + ".json"), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /** Remembers where a checkpoint's level-2 copy went (secret-free), so a restore need not be told again. */
    public void saveLevel2(String checkpoint, io.mekha.storage.StorageTarget target) throws IOException {
        Files.createDirectories(checkpointsDir());
        Path tmp = checkpointsDir().resolve(checkpoint + ".level2.tmp");
        Json.mapper().writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), target);
        Files.move(tmp, checkpointsDir().resolve(checkpoint + ".level2"), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    public java.util.Optional<io.mekha.storage.StorageTarget> level2(String checkpoint) throws IOException {
        Path file = checkpointsDir().resolve(checkpoint + ".level2");
        return Files.exists(file) ? java.util.Optional.of(Json.mapper().readValue(file.toFile(), io.mekha.storage.StorageTarget.class))
                : java.util.Optional.empty();
    }

    /** Forgets a checkpoint this VC took (after it was deleted everywhere). */
    public void forgetCheckpoint(String checkpoint) throws IOException {
        Files.deleteIfExists(checkpointsDir().resolve(checkpoint + ".json"));
        Files.deleteIfExists(checkpointsDir().resolve(checkpoint + ".level2"));
    }

    public List<CheckpointReport> checkpoints() throws IOException {
        if (!Files.isDirectory(checkpointsDir())) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(checkpointsDir())) {
            return files.filter(f -> f.toString().endsWith(".json")).map(f -> {
                try {
                    return Json.mapper().readValue(f.toFile(), CheckpointReport.class);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).sorted((a, b) -> a.suspendAt().compareTo(b.suspendAt())).toList();
        }
    }
}
