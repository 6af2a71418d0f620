package io.mekha.agent.level0;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The memory bound: level-0 copies (shadow QEMUs, held streams, partners' copies) are made only
 * where they fit beside everything else, so that a checkpoint never pushes the node into swap or
 * the agent into the OOM killer while VMs are paused. "Fits" is the smallest of the host's
 * MemAvailable, the agent's cgroup headroom ({@link CgroupMemory}) and, for streams held in a
 * filesystem (a tmpfs), its free space; a checkpoint checks all its VMs of a node together, before
 * anything is paused.
 */
public final class MemoryBound {
    /** Room a QEMU process needs beyond guest RAM (code, TCG translation cache, device state). */
    public static final long QEMU_OVERHEAD_MIB = 192;

    private MemoryBound() {}

    /** Memory more level-0 copies could take now: the smaller of the host's MemAvailable and the agent's cgroup headroom. */
    public static long roomMiB() {
        return Math.min(HostMemory.availableMiB(), CgroupMemory.headroomMiB());
    }

    /** Null when this host can hold a paused copy of a VM of {@code memoryMiB} (guest RAM plus QEMU's own), else what is missing. */
    public static String shortfall(long memoryMiB) {
        return shortfall(memoryMiB + QEMU_OVERHEAD_MIB, null, "a copy in memory");
    }

    /**
     * Null when {@code needMiB} more fits in memory (and in {@code filesystem}'s free space, when given), else what is
     * missing and where: {@code what} names the copies, for the message.
     */
    public static String shortfall(long needMiB, Path filesystem, String what) {
        long host = HostMemory.availableMiB();
        long cgroup = CgroupMemory.headroomMiB();
        long space = Long.MAX_VALUE;
        if (filesystem != null) {
            try {
                Path existing = filesystem;
                while (existing != null && !Files.exists(existing)) {
                    existing = existing.getParent(); // made on first use: the filesystem it will be on
                }
                space = Files.getFileStore(existing == null ? filesystem : existing).getUsableSpace() >> 20;
            } catch (IOException e) {
                return what + " needs " + needMiB + " MiB in " + filesystem + ", which cannot be read: " + e.getMessage();
            }
        }
        long room = Math.min(host, Math.min(cgroup, space));
        if (needMiB <= room) {
            return null;
        }
        if (room == cgroup) {
            return what + " needs " + needMiB + " MiB but the agent's memory limit (its cgroup) leaves only " + cgroup
                    + " MiB: the agent would be OOM-killed with VMs paused; raise the agent's memory limit or checkpoint fewer VMs at once";
        }
        if (room == space) {
            return what + " needs " + needMiB + " MiB in " + filesystem + " but only " + space + " MiB is free there";
        }
        return what + " needs " + needMiB + " MiB of host memory but only " + host + " MiB is available";
    }
}
