package io.mekha.agent;

import com.fasterxml.jackson.databind.JsonNode;
import io.mekha.agent.api.AgentDtos.PartnerShadow;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.ReplicateRequest;
import io.mekha.agent.api.PartnerCopyState;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.level0.MemoryBound;
import io.mekha.agent.level0.ShadowCopy;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.MigrationCapabilities;
import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.agent.storage.VmStateLoader;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import org.jboss.logging.Logger;

/**
 * Level 0 on a partner node: copies of other nodes' shadows held in this node's memory, so that a
 * checkpoint survives the loss of the node that took it; and streaming this node's own shadows to
 * such a partner.
 */
final class PartnerCopies {
    private static final Logger LOG = Logger.getLogger(PartnerCopies.class);
    private static final Duration LOAD_TIMEOUT = Duration.ofMinutes(10);

    /** A copy of another node's shadow, held here. */
    static final class PartnerCopy extends Level0Holding {
        final PartnerShadowRequest request;
        final QemuVm qemu;
        final String uri;
        private volatile PartnerCopyState state = PartnerCopyState.LOADING;
        private volatile String error;

        PartnerCopy(PartnerShadowRequest request, QemuVm qemu, String uri) {
            this.request = request;
            this.qemu = qemu;
            this.uri = uri;
        }

        PartnerCopyState state() {
            return state;
        }

        /** Whether a restart can take it: loaded, paused, and no restart took it yet. */
        boolean usable() {
            return state == PartnerCopyState.HELD && qemu.isAlive() && qemu.role() == QemuVm.Role.SHADOW;
        }

        PartnerShadow view() {
            return new PartnerShadow(request.vm(), request.sourceNode(), uri, state, error, streamedTo() != null);
        }

        @Override
        public Level0Copy copy() {
            return new ShadowCopy(qemu);
        }

        @Override
        public VmSpec spec() {
            return qemu.spec();
        }

        @Override
        public Accelerator accelerator() {
            return qemu.accelerator();
        }

        @Override
        public Path cutDisk() {
            return request.diskAtCut();
        }



    }

    private final String node;
    private final VmRuntime runtime;
    private final ExecutorService workers;
    private final Map<String, Map<String, PartnerCopy>> held = new ConcurrentHashMap<>();

    PartnerCopies(String node, VmRuntime runtime, ExecutorService workers) {
        this.node = node;
        this.runtime = runtime;
        this.workers = workers;
    }

    /**
     * Starts a QEMU here that waits on a TCP port for another node's shadow of {@code vm}, after
     * checking that this node can lend the memory; the copy is held paused once loaded.
     */
    PartnerShadow host(String id, PartnerShadowRequest request) throws AgentException, InterruptedException {
        Ids.require(id);
        if (request.vm() == null || request.spec() == null || request.listenHost() == null) {
            throw AgentException.invalid("a partner copy needs 'vm', 'spec' and 'listenHost'");
        }
        if (!runtime.partnerCopies()) {
            throw AgentException.unprocessable("node " + node + " cannot hold a partner copy: on KubeVirt, level 0 is the VM's stream held on"
                    + " its own node; for a copy that survives the node, flush the checkpoint to level 2 (shared storage)", null);
        }
        Map<String, PartnerCopy> copies = held.computeIfAbsent(id, k -> new ConcurrentHashMap<>());
        if (copies.containsKey(request.vm())) {
            throw AgentException.conflict("node " + node + " already holds a copy of VM '" + request.vm() + "' for checkpoint " + id);
        }
        String shortfall = MemoryBound.shortfall(request.spec().memoryMiB());
        if (shortfall != null) {
            throw AgentException.noRoom("node " + node + " cannot hold a copy of VM '" + request.vm() + "': " + shortfall, null);
        }
        QemuVm qemu;
        try {
            qemu = runtime.startIncoming(request.spec(), Accelerator.parse(request.accelerator()), request.diskAtCut());
        } catch (VmStartException e) {
            throw AgentException.failed("node " + node + ": cannot start a QEMU for the copy of VM '" + request.vm() + "': " + e.getMessage(), e);
        }
        String uri;
        try {
            // only a sender holding the copy's key gets through the TLS handshake: nobody else's state is ever loaded
            io.mekha.agent.qemu.MigrationTls.server(qemu, request.key());
            uri = listen(qemu, request.listenHost());
        } catch (QmpException e) {
            qemu.kill();
            throw AgentException.failed("node " + node + ": the QEMU for the copy of VM '" + request.vm() + "' refused: " + e.getMessage(), e);
        } catch (java.io.IOException e) {
            qemu.kill();
            throw AgentException.failed("node " + node + ": cannot write the key of the copy of VM '" + request.vm() + "': " + e.getMessage(), e);
        } catch (AgentException e) {
            qemu.kill();
            throw e;
        }
        PartnerCopy copy = new PartnerCopy(request, qemu, uri);
        copies.put(request.vm(), copy);
        workers.submit(() -> awaitLoaded(id, copy));
        return copy.view();
    }

    private static String listen(QemuVm qemu, String host) throws QmpException, AgentException {
        qemu.qmp().execute("migrate-incoming", QmpClient.args().put("uri", "tcp:" + host + ":0"));
        JsonNode addresses = qemu.qmp().execute("query-migrate").path("socket-address");
        String port = addresses.isArray() && addresses.size() > 0 ? addresses.get(0).path("port").asText() : "";
        if (port.isEmpty()) {
            throw AgentException.conflict("this QEMU does not report the port it listens on for incoming state (query-migrate"
                    + " socket-address); partner copies need QEMU 4.0 or newer");
        }
        return "tcp:" + host + ":" + port;
    }

    private void awaitLoaded(String id, PartnerCopy copy) {
        try {
            VmStateLoader.awaitLoaded(copy.qemu, System.nanoTime() + LOAD_TIMEOUT.toNanos());
            io.mekha.agent.qemu.MigrationTls.forget(copy.qemu);
            copy.state = PartnerCopyState.HELD;
            LOG.infof("checkpoint %s: node %s holds a copy of VM '%s' (from node %s)", id, node, copy.request.vm(), copy.request.sourceNode());
        } catch (Exception e) {
            copy.error = e.getMessage();
            copy.state = PartnerCopyState.FAILED;
            copy.qemu.kill();
        }
    }

    List<PartnerShadow> list(String id) throws AgentException {
        Ids.require(id);
        return held.getOrDefault(id, Map.of()).values().stream().map(PartnerCopy::view).toList();
    }

    /** Every partner copy this node holds, of every checkpoint. */
    List<PartnerCopy> all() {
        return held.values().stream().flatMap(m -> m.values().stream()).toList();
    }

    /** The copies this node holds for checkpoint {@code id}, by VM. */
    Map<String, PartnerCopy> of(String id) {
        return held.getOrDefault(id, Map.of());
    }

    /** The loaded copy of {@code vm} for checkpoint {@code id}, or null when this node holds none; refuses one not loaded. */
    PartnerCopy held(String id, String vm) throws AgentException {
        PartnerCopy copy = of(id).get(vm);
        if (copy != null && copy.state != PartnerCopyState.HELD) {
            throw AgentException.conflict("checkpoint " + id + ": the copy of VM '" + vm + "' on node " + node + " is " + copy.state);
        }
        return copy;
    }

    /** Drops every partner copy this node holds for checkpoint {@code id}. */
    void drop(String id) {
        Map<String, PartnerCopy> copies = held.remove(id);
        if (copies != null) {
            copies.values().forEach(c -> {
                if (c.qemu.role() == QemuVm.Role.SHADOW) {
                    c.qemu.kill();
                }
            });
        }
    }

    /** Streams this node's shadow of a complete checkpoint's VM to a partner's waiting QEMU; returns once QEMU reports it sent. */
    void replicate(String id, SessionVm vm, ReplicateRequest request) throws AgentException, InterruptedException {
        if (!(vm.copy() instanceof ShadowCopy shadowCopy)) {
            throw AgentException.unprocessable("checkpoint " + id + ": VM '" + request.vm() + "' is held as a stream on node " + node
                    + " (KubeVirt); partner copies need shadows; flush it to level 2 instead", null);
        }
        QemuVm shadow = shadowCopy.qemu();
        if (!shadow.isAlive() || shadow.role() != QemuVm.Role.SHADOW) {
            throw AgentException.conflict("the shadow of VM '" + request.vm() + "' on node " + node + " is gone");
        }
        synchronized (vm.streamLock()) {
            if (vm.streamedTo() != null) {
                throw AgentException.conflict("the shadow of VM '" + request.vm() + "' was already streamed to " + vm.streamedTo()
                        + "; QEMU streams a paused VM out only once");
            }
            try {
                MigrationCapabilities.plainOutgoingMigration(shadow);
                io.mekha.agent.qemu.MigrationTls.client(shadow, request.key());
                shadow.qmp().execute("migrate", QmpClient.args().put("uri", request.uri()));
                long deadline = System.nanoTime() + LOAD_TIMEOUT.toNanos();
                while (true) {
                    MigrationStatus status = MigrationStatus.parse(shadow.qmp().execute("query-migrate", null, Duration.ofMinutes(2)));
                    if (status.completed()) {
                        break;
                    }
                    if (status.failed() || System.nanoTime() > deadline) {
                        throw AgentException.conflict("streaming the shadow of VM '" + request.vm() + "' to " + request.uri() + " "
                                + (status.failed() ? status.status() + ": " + status.errorDescription() : "did not finish in 10 minutes"));
                    }
                    Thread.sleep(20);
                }
                vm.streamedTo("a partner (" + request.uri() + ")");
                io.mekha.agent.qemu.MigrationTls.forget(shadow);
            } catch (QmpException e) {
                throw AgentException.failed("streaming the shadow of VM '" + request.vm() + "' to its partner failed: " + e.getMessage(), e);
            } catch (java.io.IOException e) {
                throw AgentException.failed("cannot write the key of the copy of VM '" + request.vm() + "': " + e.getMessage(), e);
            }
        }
    }
}
