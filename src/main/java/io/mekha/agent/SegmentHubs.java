package io.mekha.agent;

import io.mekha.agent.network.SegmentHub;
import io.mekha.model.VmSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * The L2 segment hubs this agent hosts, when it hosts them: in local mode one agent runs the
 * whole VC and opens each VM's segment hub on first use. (With several agents, whoever owns the
 * VC hosts the hubs.)
 */
final class SegmentHubs implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SegmentHubs.class);

    private final Map<Integer, SegmentHub> hosted = new ConcurrentHashMap<>();
    private volatile boolean hosting;

    void host() {
        hosting = true;
    }

    /** Opens the hub of {@code spec}'s segment if this agent hosts hubs and it is not open yet. */
    void ensure(VmSpec spec) throws AgentException {
        if (!hosting || spec.network() == null) {
            return;
        }
        try {
            hosted.computeIfAbsent(spec.network().hubPort(), port -> {
                try {
                    return SegmentHub.open(spec.network().segment(), port);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw AgentException.unprocessable("VM '" + spec.name() + "': " + e.getCause().getMessage(), e.getCause());
        }
    }

    @Override
    public void close() {
        for (SegmentHub hub : hosted.values()) {
            try {
                hub.close();
            } catch (IOException e) {
                LOG.warnf("closing segment hub %s: %s", hub.name(), e.getMessage());
            }
        }
    }
}
