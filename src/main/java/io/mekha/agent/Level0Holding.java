package io.mekha.agent;

import io.mekha.agent.level0.HeldState;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.model.VmSpec;
import java.nio.file.Path;

/**
 * A complete checkpoint's in-memory copy of one VM on this node, as a flush or a restart takes it:
 * the VM's own (a checkpoint session's) or one held for a partner node; a shadow QEMU or a held
 * stream. A shadow QEMU streams its paused state out only once, so the holding remembers where it
 * went, and one reader at a time reads it out.
 */
abstract class Level0Holding {
    private volatile String streamedTo;
    private final Object streamLock = new Object();

    /** The stream it holds (null: the copy is a shadow QEMU). */
    abstract HeldState heldState();

    /** The shadow QEMU it holds (null: the copy is a held stream). */
    abstract QemuVm shadow();

    /** Whether it holds a whole state to restart from now. */
    abstract boolean holds();

    /** Memory it keeps now (for the node's figures): a stream's bytes, a shadow's guest RAM; 0 when it holds nothing. */
    final long heldBytes() {
        if (!holds()) {
            return 0;
        }
        HeldState state = heldState();
        if (state != null) {
            return state.bytes() + fileSize(state.disk());
        }
        return spec() == null ? 0 : spec().memoryMiB() << 20;
    }

    private static long fileSize(Path file) {
        try {
            return file == null ? 0 : java.nio.file.Files.size(file);
        } catch (java.io.IOException e) {
            return 0;
        }
    }

    abstract VmSpec spec();

    abstract Accelerator accelerator();

    /** The VM's disk as it was at the cut (null: no disk). */
    abstract Path cutDisk();

    /** Where the copy was streamed out to already (a level, a partner), or null. */
    final String streamedTo() {
        return streamedTo;
    }

    /** The copy was streamed out to {@code where}. */
    final void streamedTo(String where) {
        streamedTo = where;
    }

    /** Held while the copy is read out (one save or replication at a time: a shadow migrates to one place at once). */
    final Object streamLock() {
        return streamLock;
    }
}
