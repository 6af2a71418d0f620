package io.mekha.agent.level0;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;

/**
 * A VM's migration stream held whole in this node's memory, readable any number of times: flushed to a level, handed
 * to a partner node, fed to a QEMU waiting for it. The VM's own ({@link HeldStream}) or one a partner node handed over
 * ({@link ReceivedStream}).
 */
public interface HeldState {

    /** Reads the stream from its start; refused while it is not whole. */
    InputStream open() throws IOException;

    /** The stream's length. */
    long bytes();

    /** The VM's pod-only disk as it was at the cut, beside the stream (null: none). */
    Path disk();
}
