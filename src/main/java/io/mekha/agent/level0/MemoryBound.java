package io.mekha.agent.level0;

/**
 * The memory bound: a level-0 copy (a shadow QEMU, or a partner's copy) is made only where this
 * host can hold it beside everything else, so that a checkpoint never pushes the node into swap
 * or the OOM killer while VMs are paused.
 */
public final class MemoryBound {
    /** Room a QEMU process needs beyond guest RAM (code, TCG translation cache, device state). */
    static final long QEMU_OVERHEAD_MIB = 192;

    private MemoryBound() {}

    /** Null when this host can hold a paused copy of a VM of {@code memoryMiB} (guest RAM plus QEMU's own), else what is missing. */
    public static String shortfall(long memoryMiB) {
        long need = memoryMiB + QEMU_OVERHEAD_MIB;
        long available = HostMemory.availableMiB();
        return need > available ? "a copy in memory needs " + need + " MiB of host memory but only " + available + " MiB is available"
                : null;
    }
}
