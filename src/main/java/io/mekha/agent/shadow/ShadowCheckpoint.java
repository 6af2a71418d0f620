package io.mekha.agent.shadow;

import io.mekha.agent.runtime.QemuVm;
import io.mekha.agent.transfer.TransferFigures;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.time.Instant;

/**
 * A level-0 checkpoint of one VM: a paused shadow QEMU holding the VM's whole state at the cut.
 * Restarting from it is a {@code cont} on the shadow.
 */
public final class ShadowCheckpoint {
    private final QemuVm source;
    private final QemuVm shadow;
    private final TransferFigures figures;
    private final Instant cut;

    public ShadowCheckpoint(QemuVm source, QemuVm shadow, TransferFigures figures, Instant cut) {
        this.source = source;
        this.shadow = shadow;
        this.figures = figures;
        this.cut = cut;
    }

    public QemuVm source() {
        return source;
    }

    public QemuVm shadow() {
        return shadow;
    }

    public TransferFigures figures() {
        return figures;
    }

    /** The instant the VM's state was frozen. */
    public Instant cut() {
        return cut;
    }

    /**
     * Restarts the VM from this checkpoint: the source (crashed, or still running) is killed first
     * so two copies of the VM never run, then the shadow runs and is the VM from now on.
     */
    public QemuVm restart() throws QmpException, IOException {
        if (source.isAlive()) {
            source.kill();
        }
        shadow.promote();
        shadow.qmp().execute("cont");
        return shadow;
    }

    /** Drops the checkpoint: kills the shadow. */
    public void discard() {
        shadow.kill();
    }
}
