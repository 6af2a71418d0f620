package io.mekha.agent.level0;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reads this host's memory figures from /proc/meminfo: the memory bound a shadow must fit in. */
public final class HostMemory {
    private static final Path MEMINFO = Path.of("/proc/meminfo");

    private HostMemory() {}

    /** MemAvailable in MiB: what can be given to a new process without swapping. */
    public static long availableMiB() {
        return read("MemAvailable:");
    }

    /** MemTotal in MiB. */
    public static long totalMiB() {
        return read("MemTotal:");
    }

    private static long read(String key) {
        try {
            for (String line : Files.readAllLines(MEMINFO)) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]) / 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            throw new IllegalStateException("cannot read " + key + " from " + MEMINFO + ": " + e.getMessage(), e);
        }
        throw new IllegalStateException(MEMINFO + " has no " + key);
    }
}
