package io.mekha.agent;

import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.model.VmSpec;
import java.nio.file.Path;

/**
 * A complete checkpoint's in-memory copy of one VM on this node, as a flush or a restart takes it:
 * the VM's own (a checkpoint session's) or one held for a partner node. A shadow QEMU streams its
 * paused state out only once, so the holding remembers where it went, and one reader at a time
 * reads it out.
 */
abstract class Level0Holding {
    private volatile String streamedTo;
    private final Object streamLock = new Object();

    abstract Level0Copy copy();

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
