package io.mekha.local.bench;

import io.mekha.agent.api.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/** A benchmark's figures as JSON beside the docs: the command that made them, the machine, when, and the figures. */
public final class BenchDocument {
    private final Map<String, Object> fields = new LinkedHashMap<>();

    public BenchDocument(String command, String machine) {
        fields.put("command", command);
        fields.put("machine", machine);
        fields.put("ranAt", Instant.now().toString());
    }

    public BenchDocument with(String name, Object value) {
        fields.put(name, value);
        return this;
    }

    /** Writes {@code dir/file} (pretty JSON), creating {@code dir}; returns the file. */
    public Path write(Path dir, String file) throws IOException {
        Files.createDirectories(dir);
        Path path = dir.resolve(file);
        Json.mapper().writerWithDefaultPrettyPrinter().writeValue(path.toFile(), fields);
        return path;
    }
}
