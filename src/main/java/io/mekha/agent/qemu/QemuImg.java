package io.mekha.agent.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import io.mekha.agent.api.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The qemu-img commands Mekha runs on disk images; images others may hold open are read with a shared lock (-U). */
public final class QemuImg {
    private final String binary;

    public QemuImg(RuntimeConfig config) {
        this.binary = config.qemuImg();
    }

    /** {@code qemu-img info} of an image, read without taking its lock. */
    public JsonNode info(Path image) throws IOException, InterruptedException {
        return Json.mapper().readTree(run(List.of("info", "-U", "--output=json", image.toString())));
    }

    /** Runs {@code qemu-img ARGS}; its output, or an IOException carrying what it printed. */
    public String run(List<String> args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(binary);
        command.addAll(args);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IOException("qemu-img " + args.get(0) + " failed: " + out.strip());
        }
        return out;
    }
}
