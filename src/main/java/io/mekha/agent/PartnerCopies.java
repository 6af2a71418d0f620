package io.mekha.agent;

import com.fasterxml.jackson.databind.JsonNode;
import io.mekha.agent.api.AgentDtos.Level0Room;
import io.mekha.agent.api.AgentDtos.PartnerCopyInfo;
import io.mekha.agent.api.AgentDtos.PartnerReservation;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.PartnerStreamHeader;
import io.mekha.agent.api.AgentDtos.PartnerStreamReceipt;
import io.mekha.agent.api.PartnerCopyState;
import io.mekha.agent.api.PartnerKind;
import io.mekha.agent.level0.HeldState;
import io.mekha.agent.level0.MemoryBound;
import io.mekha.agent.level0.ReceivedStream;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.agent.storage.VmStateLoader;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Level 0 on a partner node: copies of other nodes' VMs held in this node's memory, so that a checkpoint survives the
 * loss of the node that took it. Room for a copy is kept before the checkpoint's cut ({@link #reserve}), bounded by
 * what this node lends; the copy then comes from the VM's node only, with the copy's key: a shadow QEMU loaded over
 * QEMU's TLS migration (local runtime, {@link #host}), or the VM's held stream handed over by its node's agent on the
 * agents' mutual TLS (KubeVirt, {@link #receive}).
 */
final class PartnerCopies {
    private static final Logger LOG = Logger.getLogger(PartnerCopies.class);
    private static final Duration LOAD_TIMEOUT = Duration.ofMinutes(10);
    /** How long kept room waits for its copy: a coordinator that went away never leaves this node's memory promised. */
    static final Duration RESERVATION_HOLD = Duration.ofMinutes(30);

    /** What a restart from a copy needs of the VM's cut, as the VM's node said it. */
    record Origin(VmSpec spec, Accelerator accelerator, Instant stoppedAt, Instant guestClockAtCut, String timePolicy, Duration stopLate,
                  Path diskAtCut) {}

    /** A copy of another node's VM held here, or the room kept for one. */
    abstract static class PartnerCopy extends Level0Holding {
        final String checkpoint;
        final String vm;
        final String sourceNode;
        final String key;
        final long reservedMiB;
        volatile PartnerCopyState state;
        volatile String error;
        volatile String uri;
        volatile Origin origin;
        volatile ScheduledFuture<?> expiry;

        PartnerCopy(String checkpoint, String vm, String sourceNode, String key, long reservedMiB, PartnerCopyState state) {
            this.checkpoint = checkpoint;
            this.vm = vm;
            this.sourceNode = sourceNode;
            this.key = key;
            this.reservedMiB = reservedMiB;
            this.state = state;
        }

        PartnerCopyState state() {
            return state;
        }

        abstract PartnerKind kind();

        /** Whether a restart can take it now. */
        abstract boolean usable();

        /** Drops what it holds (a QEMU, files); never throws. */
        abstract void drop();

        /** Memory it counts against this node's lending: the room kept, or more if the copy turned out larger. */
        long lentMiB() {
            return state == PartnerCopyState.FAILED ? 0 : Math.max(reservedMiB, heldBytes() >> 20);
        }

        PartnerCopyInfo view() {
            return new PartnerCopyInfo(vm, sourceNode, uri, state, error, streamedTo() != null, kind(), reservedMiB, heldBytes());
        }

        @Override
        boolean holds() {
            return state == PartnerCopyState.HELD && usable();
        }

        @Override
        public VmSpec spec() {
            return origin == null ? null : origin.spec();
        }

        @Override
        public Accelerator accelerator() {
            return origin == null ? null : origin.accelerator();
        }

        @Override
        public Path cutDisk() {
            return origin == null ? null : origin.diskAtCut();
        }

        /** Whether {@code offered} is this copy's key (compared in constant time). */
        boolean keyIs(String offered) {
            return offered != null && MessageDigest.isEqual(key.getBytes(StandardCharsets.US_ASCII), offered.getBytes(StandardCharsets.US_ASCII));
        }
    }

    /** A paused QEMU of the VM's machine, loaded from the VM's shadow (the local runtime). */
    static final class ShadowPartner extends PartnerCopy {
        volatile QemuVm qemu;

        ShadowPartner(String checkpoint, String vm, String sourceNode, String key, long reservedMiB, PartnerCopyState state) {
            super(checkpoint, vm, sourceNode, key, reservedMiB, state);
        }

        @Override
        PartnerKind kind() {
            return PartnerKind.SHADOW;
        }

        @Override
        boolean usable() {
            QemuVm q = qemu;
            return state == PartnerCopyState.HELD && q != null && q.isAlive() && q.role() == QemuVm.Role.SHADOW;
        }

        @Override
        HeldState heldState() {
            return null;
        }

        @Override
        QemuVm shadow() {
            return qemu;
        }

        @Override
        void drop() {
            QemuVm q = qemu;
            if (q != null && q.role() == QemuVm.Role.SHADOW) {
                q.kill();
            }
        }
    }

    /** The VM's migration stream, handed over by its node's agent and held in this node's level-0 memory (KubeVirt). */
    static final class StreamPartner extends PartnerCopy {
        final ReceivedStream stream;

        StreamPartner(String checkpoint, String vm, String sourceNode, String key, long reservedMiB, ReceivedStream stream) {
            super(checkpoint, vm, sourceNode, key, reservedMiB, PartnerCopyState.RESERVED);
            this.stream = stream;
        }

        @Override
        PartnerKind kind() {
            return PartnerKind.STREAM;
        }

        @Override
        boolean usable() {
            return state == PartnerCopyState.HELD && stream.whole();
        }

        @Override
        HeldState heldState() {
            return stream;
        }

        @Override
        QemuVm shadow() {
            return null;
        }

        @Override
        void drop() {
            stream.discard();
        }
    }

    private final String node;
    private final VmRuntime runtime;
    private final ExecutorService workers;
    private final ScheduledExecutorService timers;
    private final Map<String, Map<String, PartnerCopy>> held = new ConcurrentHashMap<>();
    /** The most this node lends to other nodes' copies, in MiB (Long.MAX_VALUE: only its memory bounds it). */
    private volatile long lendLimitMiB = Long.MAX_VALUE;
    /** The port of this agent's partner listener (streams come in there), or 0: it takes no streams. */
    private volatile int streamPort;

    PartnerCopies(String node, VmRuntime runtime, ExecutorService workers, ScheduledExecutorService timers) {
        this.node = node;
        this.runtime = runtime;
        this.workers = workers;
        this.timers = timers;
    }

    void lendAtMost(long mib) {
        if (mib < 0) {
            throw new IllegalArgumentException("the memory lent to other nodes' level-0 copies cannot be negative: " + mib + " MiB");
        }
        lendLimitMiB = mib;
    }

    /** Streams of other nodes' VMs come in on the partner listener at {@code port} (0: none, this agent takes no streams). */
    void streamsArriveOn(int port) {
        streamPort = port;
    }

    /** Memory taken, or promised, by other nodes' copies here, in MiB. */
    long lentMiB() {
        return all().stream().mapToLong(PartnerCopy::lentMiB).sum();
    }

    /** Memory promised to copies that have not (all) arrived yet: the host does not show it as used. */
    long promisedMiB() {
        return all().stream().filter(c -> c.state == PartnerCopyState.RESERVED || c.state == PartnerCopyState.LOADING)
                .mapToLong(c -> Math.max(0, c.reservedMiB - (c.heldBytes() >> 20))).sum();
    }

    Level0Room room() {
        long lent = lentMiB();
        long left = lendLimitMiB == Long.MAX_VALUE ? Long.MAX_VALUE : Math.max(0, lendLimitMiB - lent);
        long memory = Math.max(0, MemoryBound.roomMiB() - promisedMiB());
        PartnerKind kind = runtime.partnerCopies() == PartnerKind.STREAM && streamPort == 0 ? PartnerKind.NONE : runtime.partnerCopies();
        return new Level0Room(node, kind, lendLimitMiB == Long.MAX_VALUE ? -1 : lendLimitMiB, lent, kind == PartnerKind.NONE ? 0 : Math.min(left, memory),
                runtime.level0NeedMiB(0));
    }

    // ---------------------------------------------------------------- before the cut: room

    /**
     * Keeps room here for a copy of VM {@code request.vm()} of node {@code request.sourceNode()}, before the checkpoint's
     * cut; refused (no room) when it does not fit what this node lends or its memory. Let go of by itself after
     * {@link #RESERVATION_HOLD} if the copy never comes.
     */
    synchronized PartnerCopyInfo reserve(String id, PartnerReservation request) throws AgentException {
        Ids.require(id);
        if (request == null || request.vm() == null || request.sourceNode() == null || request.memoryMiB() <= 0) {
            throw AgentException.invalid("room for a partner copy needs 'vm', 'sourceNode' and 'memoryMiB' (the VM's guest RAM, > 0)");
        }
        Ids.requireVm(request.vm()); // it names the copy's files here
        if (request.sourceNode().equals(node)) {
            throw AgentException.invalid("node " + node + " cannot be the partner of its own VM '" + request.vm()
                    + "': a partner copy lives on another node, so that losing one node never takes both copies");
        }
        PartnerKind kind = refusesCopies();
        Map<String, PartnerCopy> copies = held.computeIfAbsent(id, k -> new ConcurrentHashMap<>());
        if (copies.containsKey(request.vm())) {
            throw AgentException.conflict("node " + node + " already holds or keeps room for VM '" + request.vm() + "' of checkpoint " + id);
        }
        long need = runtime.level0NeedMiB(request.memoryMiB());
        requireRoom(request.vm(), request.sourceNode(), need, kind);
        PartnerCopy copy = kind == PartnerKind.SHADOW
                ? new ShadowPartner(id, request.vm(), request.sourceNode(), request.key(), need, PartnerCopyState.RESERVED)
                : new StreamPartner(id, request.vm(), request.sourceNode(), request.key(), need, new ReceivedStream(
                        streamFile(id, request.vm(), ".stream"), streamFile(id, request.vm(), ".disk.qcow2")));
        if (kind == PartnerKind.STREAM) {
            String host = request.listenHost();
            copy.uri = "https://" + (host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + streamPort;
        }
        copies.put(request.vm(), copy);
        copy.expiry = timers.schedule(() -> expire(copy), RESERVATION_HOLD.toMillis(), TimeUnit.MILLISECONDS);
        LOG.infof("checkpoint %s: node %s keeps %d MiB for a copy of VM '%s' of node %s", id, node, need, request.vm(), request.sourceNode());
        return copy.view();
    }

    /** The kind of copies this node takes; refuses when it takes none (with what to change). */
    private PartnerKind refusesCopies() throws AgentException {
        PartnerKind kind = runtime.partnerCopies();
        if (kind == PartnerKind.NONE) {
            throw AgentException.unprocessable("node " + node + " holds no copies of other nodes' VMs (its runtime: " + runtime.kind() + ")", null);
        }
        if (kind == PartnerKind.STREAM && streamPort == 0) {
            throw AgentException.unprocessable("node " + node + " takes no copies of other nodes' VMs: its agent serves without the agents'"
                    + " mutual TLS (--tls-from-csr), and Mekha never sends a VM's state between nodes in the clear", null);
        }
        return kind;
    }

    /** Refuses (no room) when {@code needMiB} more does not fit what this node lends, or its memory beside what is promised. */
    private void requireRoom(String vm, String sourceNode, long needMiB, PartnerKind kind) throws AgentException {
        long lent = lentMiB();
        if (lendLimitMiB != Long.MAX_VALUE && lent + needMiB > lendLimitMiB) {
            throw AgentException.noRoom("node " + node + " cannot hold a copy of VM '" + vm + "' of node " + sourceNode + ": it needs " + needMiB
                    + " MiB, and of the " + lendLimitMiB + " MiB this node lends to other nodes' copies " + lent + " MiB are taken or promised"
                    + " (the agent's --lend-memory; the chart's agent.level0.lendMemory)", null);
        }
        String shortfall = MemoryBound.shortfall(promisedMiB() + needMiB, kind == PartnerKind.STREAM ? runtime.level0Dir() : null,
                "a copy of VM '" + vm + "' of node " + sourceNode + " (beside the copies promised already)");
        if (shortfall != null) {
            throw AgentException.noRoom("node " + node + ": " + shortfall, null);
        }
    }

    private Path streamFile(String id, String vm, String suffix) {
        return runtime.level0Dir().resolve("partners").resolve(id).resolve(vm + suffix);
    }

    private void expire(PartnerCopy copy) {
        synchronized (this) {
            if (copy.state != PartnerCopyState.RESERVED) {
                return;
            }
            copy.state = PartnerCopyState.FAILED;
            copy.error = "no copy came within " + RESERVATION_HOLD.toMinutes() + " minutes of the room kept for it";
            forget(copy);
        }
        LOG.warnf("checkpoint %s: the room node %s kept for VM '%s' of node %s was let go: %s", copy.checkpoint, node, copy.vm,
                copy.sourceNode, copy.error);
    }

    private void forget(PartnerCopy copy) {
        Map<String, PartnerCopy> copies = held.get(copy.checkpoint);
        if (copies != null) {
            copies.remove(copy.vm, copy);
        }
    }

    /** The copy of {@code vm} expected from {@code sourceNode} with {@code key}, in the state given; else why not. */
    private PartnerCopy expected(String id, String vm, String sourceNode, String key, Class<? extends PartnerCopy> kind)
            throws AgentException {
        PartnerCopy copy = of(id).get(vm);
        if (copy == null || !kind.isInstance(copy)) {
            throw AgentException.notFound("node " + node + " keeps no room for a copy of VM '" + vm + "' of checkpoint " + id);
        }
        if (!copy.keyIs(key)) {
            // the sender is authenticated (its certificate); without the copy's key it may not deliver this copy
            throw AgentException.forbidden("the copy of VM '" + vm + "' of checkpoint " + id + " was offered without its key");
        }
        if (!copy.sourceNode.equals(sourceNode)) {
            throw AgentException.forbidden("the copy of VM '" + vm + "' of checkpoint " + id + " comes from node " + copy.sourceNode
                    + " only, not from node " + sourceNode);
        }
        if (copy.state != PartnerCopyState.RESERVED) {
            throw AgentException.conflict("the copy of VM '" + vm + "' of checkpoint " + id + " on node " + node + " is " + copy.state
                    + " already");
        }
        return copy;
    }

    // ---------------------------------------------------------------- a shadow QEMU (local runtime)

    /**
     * Starts a QEMU here that waits on a TCP port for another node's shadow of {@code vm}; the copy is held paused once
     * loaded. Takes the room kept for it (the key must match), else checks now that this node can lend the memory.
     */
    PartnerCopyInfo host(String id, PartnerShadowRequest request) throws AgentException, InterruptedException {
        Ids.require(id);
        if (request.vm() == null || request.spec() == null || request.listenHost() == null) {
            throw AgentException.invalid("a partner copy needs 'vm', 'spec' and 'listenHost'");
        }
        ShadowPartner copy;
        synchronized (this) {
            if (refusesCopies() != PartnerKind.SHADOW) {
                throw AgentException.unprocessable("node " + node + " holds other nodes' VMs as streams their agents hand over, not as"
                        + " shadow QEMUs: reserve room for the copy and have the VM's node replicate its stream here", null);
            }
            PartnerCopy kept = of(id).get(request.vm());
            if (kept != null) {
                copy = (ShadowPartner) expected(id, request.vm(), request.sourceNode(), request.key(), ShadowPartner.class);
            } else {
                long need = runtime.level0NeedMiB(request.spec().memoryMiB());
                requireRoom(request.vm(), request.sourceNode(), need, PartnerKind.SHADOW);
                copy = new ShadowPartner(id, request.vm(), request.sourceNode(), request.key(), need, PartnerCopyState.RESERVED);
                held.computeIfAbsent(id, k -> new ConcurrentHashMap<>()).put(request.vm(), copy);
            }
            copy.state = PartnerCopyState.LOADING;
            cancelExpiry(copy);
            copy.origin = new Origin(request.spec(), Accelerator.parse(request.accelerator()), request.stoppedAt(), request.guestClockAtCut(),
                    request.timePolicy(), request.stopLate(), request.diskAtCut());
        }
        QemuVm qemu;
        try {
            qemu = runtime.startIncoming(request.spec(), Accelerator.parse(request.accelerator()), request.diskAtCut());
        } catch (VmStartException e) {
            fail(copy, e.getMessage());
            throw AgentException.failed("node " + node + ": cannot start a QEMU for the copy of VM '" + request.vm() + "': " + e.getMessage(), e);
        }
        boolean kept;
        synchronized (this) {
            // a drop while the QEMU started found no QEMU to stop: this one must not outlive it
            kept = of(id).get(request.vm()) == copy;
            if (kept) {
                copy.qemu = qemu;
            }
        }
        if (!kept) {
            qemu.kill();
            fail(copy, "dropped while its QEMU started");
            throw AgentException.conflict("node " + node + ": the copy of VM '" + request.vm() + "' of checkpoint " + id
                    + " was dropped while its QEMU started; nothing of it is kept");
        }
        try {
            // only a sender holding the copy's key gets through the TLS handshake: nobody else's state is ever loaded
            io.mekha.agent.qemu.MigrationTls.server(qemu, request.key());
            copy.uri = listen(qemu, request.listenHost());
        } catch (IOException | AgentException e) {
            qemu.kill();
            fail(copy, e.getMessage());
            if (e instanceof AgentException a) {
                throw a;
            }
            throw AgentException.failed("node " + node + ": the QEMU for the copy of VM '" + request.vm() + "' refused: " + e.getMessage(), e);
        }
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

    private void awaitLoaded(String id, ShadowPartner copy) {
        try {
            VmStateLoader.awaitLoaded(copy.qemu, System.nanoTime() + LOAD_TIMEOUT.toNanos());
            io.mekha.agent.qemu.MigrationTls.forget(copy.qemu);
            copy.state = PartnerCopyState.HELD;
            LOG.infof("checkpoint %s: node %s holds a copy of VM '%s' (from node %s)", id, node, copy.vm, copy.sourceNode);
        } catch (Exception e) {
            copy.qemu.kill();
            fail(copy, e.getMessage());
        }
    }

    private static void fail(PartnerCopy copy, String why) {
        copy.error = why;
        copy.state = PartnerCopyState.FAILED;
    }

    private static void cancelExpiry(PartnerCopy copy) {
        ScheduledFuture<?> expiry = copy.expiry;
        if (expiry != null) {
            expiry.cancel(false);
        }
    }

    // ---------------------------------------------------------------- a held stream (KubeVirt)

    /**
     * Takes another node's held stream of {@code vm} into the room kept for it: only from the agent of the node the room
     * was kept for ({@code fromNode}, as its certificate names it), only with the copy's key, and only as many bytes as
     * fit. Returns the receipt (bytes, SHA-256) once the copy is whole and held.
     */
    PartnerStreamReceipt receive(String id, String vm, String fromNode, String key, PartnerStreamHeader header, InputStream body)
            throws AgentException {
        StreamPartner copy;
        synchronized (this) {
            copy = admit(id, vm, fromNode, key, header);
            copy.state = PartnerCopyState.LOADING;
            cancelExpiry(copy);
        }
        Accelerator accelerator;
        try {
            accelerator = Accelerator.parse(header.accelerator());
        } catch (IllegalArgumentException e) {
            fail(copy, e.getMessage());
            throw AgentException.invalid("the copy of VM '" + vm + "': " + e.getMessage());
        }
        try {
            String sha256 = copy.stream.receive(body, header.streamBytes(), header.diskBytes());
            copy.origin = new Origin(header.spec(), accelerator, header.stoppedAt(), header.guestClockAtCut(), header.timePolicy(),
                    header.stopLate(), copy.stream.disk());
            copy.state = PartnerCopyState.HELD;
            LOG.infof("checkpoint %s: node %s holds a copy of VM '%s' (from node %s): %d bytes", id, node, vm, fromNode, header.streamBytes());
            return new PartnerStreamReceipt(vm, node, header.streamBytes() + header.diskBytes(), sha256);
        } catch (IOException e) {
            fail(copy, e.getMessage());
            throw AgentException.failed("node " + node + ": the copy of VM '" + vm + "' from node " + fromNode + " did not arrive whole: "
                    + e.getMessage() + "; nothing of it is kept", e);
        }
    }

    /** What {@link #receive} checks before it takes a byte, without taking any: the sender asks first, so a refusal reaches it whole. */
    synchronized void probe(String id, String vm, String fromNode, String key, PartnerStreamHeader header) throws AgentException {
        admit(id, vm, fromNode, key, header);
    }

    /** The room kept for this stream, if the sender, its key and the header are the ones expected and the stream fits. */
    private StreamPartner admit(String id, String vm, String fromNode, String key, PartnerStreamHeader header) throws AgentException {
        Ids.require(id);
        StreamPartner copy = (StreamPartner) expected(id, vm, fromNode, key, StreamPartner.class);
        if (header == null || header.spec() == null || !vm.equals(header.vm()) || !fromNode.equals(header.sourceNode())
                || header.streamBytes() <= 0 || header.diskBytes() < 0 || !vm.equals(header.spec().name())) {
            throw AgentException.invalid("the copy of VM '" + vm + "' needs a header naming that VM, its node (" + fromNode
                    + "), its spec and the stream's length (> 0) and the disk's (0: none)");
        }
        long arriving = (header.streamBytes() + header.diskBytes() + (1 << 20) - 1) >> 20;
        if (arriving > copy.reservedMiB) {
            requireRoom(vm, fromNode, arriving - copy.reservedMiB, PartnerKind.STREAM); // a disk beside the stream made it larger
        }
        return copy;
    }

    // ---------------------------------------------------------------- what is held

    List<PartnerCopyInfo> list(String id) throws AgentException {
        Ids.require(id);
        return held.getOrDefault(id, Map.of()).values().stream().map(PartnerCopy::view).toList();
    }

    /** Every partner copy this node holds (or keeps room for), of every checkpoint. */
    List<PartnerCopy> all() {
        return held.values().stream().flatMap(m -> m.values().stream()).toList();
    }

    /** The copies this node holds for checkpoint {@code id}, by VM. */
    Map<String, PartnerCopy> of(String id) {
        return held.getOrDefault(id, Map.of());
    }

    /** The copy of {@code vm} for checkpoint {@code id}, or null when this node holds none; refuses one not held whole. */
    PartnerCopy held(String id, String vm) throws AgentException {
        PartnerCopy copy = of(id).get(vm);
        if (copy != null && copy.state != PartnerCopyState.HELD) {
            throw AgentException.conflict("checkpoint " + id + ": the copy of VM '" + vm + "' on node " + node + " is " + copy.state);
        }
        return copy;
    }

    /** Drops the copy of {@code vm} (or the room kept for it) this node holds for checkpoint {@code id}, if any; the others stay. */
    void drop(String id, String vm) {
        PartnerCopy copy;
        synchronized (this) {
            Map<String, PartnerCopy> copies = held.get(id);
            copy = copies == null ? null : copies.remove(vm);
        }
        if (copy != null) {
            cancelExpiry(copy);
            copy.drop();
            LOG.infof("checkpoint %s: node %s let go of its copy of VM '%s' (of node %s)", id, node, vm, copy.sourceNode);
        }
    }

    /** Drops every partner copy this node holds, and the room it keeps, for checkpoint {@code id}. */
    void drop(String id) {
        Map<String, PartnerCopy> copies;
        synchronized (this) {
            copies = held.remove(id);
        }
        if (copies != null) {
            copies.values().forEach(c -> {
                cancelExpiry(c);
                c.drop();
            });
        }
    }
}
