package io.mekha.agent.level0;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * How much more memory this process may use under its cgroup's limits, cgroup v2 or v1: in a pod
 * (the agent's DaemonSet sets a memory limit) that, not the host's MemAvailable, is what decides
 * whether a level-0 copy fits. A held stream lives in a tmpfs whose pages are charged to the agent's
 * cgroup, and a shadow QEMU is the agent's child, in its cgroup; past the limit the kernel's OOM killer
 * ends the agent, with VMs paused. The headroom is the smallest, over the cgroup and its ancestors, of
 * limit minus usage, where usage leaves out inactive file cache (reclaimed before any OOM kill).
 */
public final class CgroupMemory {
    /** cgroup v1 writes "no limit" as a huge number near 2^63. */
    private static final long UNLIMITED_V1 = 1L << 62;

    private CgroupMemory() {}

    /** This process's headroom in MiB, or {@link Long#MAX_VALUE} when no cgroup limit applies (or none can be read). */
    public static long headroomMiB() {
        return headroomMiB(Path.of("/proc/self/cgroup"), Path.of("/sys/fs/cgroup"));
    }

    /** The same, from a {@code /proc/<pid>/cgroup} file and a cgroup filesystem root (tests give their own). */
    public static long headroomMiB(Path procCgroup, Path cgroupFs) {
        List<String> lines;
        try {
            lines = Files.readAllLines(procCgroup);
        } catch (IOException e) {
            return Long.MAX_VALUE;
        }
        long best = Long.MAX_VALUE;
        for (String line : lines) {
            String[] parts = line.split(":", 3);
            if (parts.length < 3) {
                continue;
            }
            if (parts[0].equals("0") && parts[1].isEmpty()) {
                // v2: unified at the root, or beside v1 at unified/ (hybrid)
                Path root = Files.exists(cgroupFs.resolve("cgroup.controllers")) ? cgroupFs : cgroupFs.resolve("unified");
                best = Math.min(best, walk(root, parts[2], "memory.max", "memory.current", "inactive_file"));
            } else if (List.of(parts[1].split(",")).contains("memory")) {
                best = Math.min(best, walk(cgroupFs.resolve("memory"), parts[2], "memory.limit_in_bytes", "memory.usage_in_bytes",
                        "total_inactive_file"));
            }
        }
        return best;
    }

    private static long walk(Path root, String path, String limitFile, String usageFile, String inactiveKey) {
        long best = Long.MAX_VALUE;
        Path dir = root.resolve(path.startsWith("/") ? path.substring(1) : path).normalize();
        if (!dir.startsWith(root)) {
            return best;
        }
        while (true) {
            Long limit = number(dir.resolve(limitFile));
            Long usage = number(dir.resolve(usageFile));
            if (limit != null && usage != null && limit < UNLIMITED_V1) {
                long inactive = stat(dir.resolve("memory.stat"), inactiveKey);
                best = Math.min(best, Math.max(0, limit - Math.max(0, usage - inactive)) >> 20);
            }
            if (dir.equals(root)) {
                return best;
            }
            dir = dir.getParent();
        }
    }

    private static Long number(Path file) {
        try {
            String v = Files.readString(file).trim();
            return v.equals("max") ? Long.MAX_VALUE : Long.parseLong(v);
        } catch (IOException | NumberFormatException e) {
            return null;
        }
    }

    private static long stat(Path file, String key) {
        try {
            for (String line : Files.readAllLines(file)) {
                if (line.startsWith(key + " ")) {
                    return Long.parseLong(line.substring(key.length() + 1).trim());
                }
            }
        } catch (IOException | NumberFormatException e) {
            // no figure: count all usage
        }
        return 0;
    }
}
