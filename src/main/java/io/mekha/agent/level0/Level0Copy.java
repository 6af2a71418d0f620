package io.mekha.agent.level0;

import io.mekha.qmp.QmpException;
import java.io.IOException;

/**
 * Where a checkpoint's level-0 (in-memory) copy of a VM goes during the transfer: a shadow QEMU
 * that loads the state as it comes ({@link ShadowCopy}: restart by {@code cont} in milliseconds),
 * or the migration stream itself, held in memory by the agent ({@link HeldStream}: for a QEMU whose
 * machine the agent cannot reproduce, such as virt-launcher's; restart by feeding it to a new QEMU).
 */
public interface Level0Copy {

    /** Readies the copy to receive; returns the URI the source QEMU migrates to. */
    String receive() throws IOException, QmpException;

    /** Whether the receiving side can withhold QEMU's switchover ({@code switchover-ack} over a return path). */
    boolean offersSwitchoverAck() throws QmpException;

    /** Waits until the copy holds the whole state; null when it does, else why not. */
    String awaitComplete(long deadline) throws QmpException, InterruptedException;

    /** Whether the copy still holds a whole state to restart from (a paused shadow no restart took over, a complete stream). */
    boolean held();

    /** Whether the copy broke by itself (its QEMU exited, its stream failed). */
    boolean lost();

    /** Drops the copy and what it holds (best effort, never throws). */
    void discard();

    /** For messages: "its shadow QEMU", "the stream held in memory". */
    String describe();

    /** What the copy's own side last said about a failure (a shadow QEMU's last log line), for messages; empty when nothing. */
    default String lastWords() {
        return "";
    }
}
