package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.ExecRequest;
import io.mekha.agent.api.AgentDtos.ExecResult;
import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.FlushResult;
import io.mekha.agent.api.AgentDtos.Level0Room;
import io.mekha.agent.api.AgentDtos.PartnerCopyInfo;
import io.mekha.agent.api.AgentDtos.PartnerReservation;
import io.mekha.agent.api.AgentDtos.PartnerStreamHeader;
import io.mekha.agent.api.AgentDtos.PartnerStreamReceipt;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.AgentDtos.PublishManifestRequest;
import io.mekha.agent.api.AgentDtos.ReplicateRequest;
import io.mekha.agent.api.AgentDtos.RestartStatus;
import io.mekha.agent.api.AgentDtos.StoredCheckpoint;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.AgentDtos.StoredVmResult;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.level0.ShadowCopy;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.agent.storage.VmStateStreams;
import io.mekha.model.VmSpec;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;

/**
 * Everything a node does for Mekha, apart from HTTP, as one facade over its rooms: the VMs it runs
 * ({@link VmRegistry}), its part of the checkpoint protocol ({@link CheckpointSessions}) and of the
 * restart protocol ({@link Restarts}), level-0 copies held for partner nodes ({@link PartnerCopies}),
 * and stored checkpoints ({@link Flushes}, {@link StoredCatalog}, {@link StoredLoads}). It never
 * leaves a VM paused: the sessions' watchdogs resume what they paused when the coordinator goes silent.
 */
public final class AgentService implements AutoCloseable {
    private final String node;
    private final VmRuntime runtime;
    private final RendezvousClock clock;
    private final ScheduledExecutorService timers = Executors.newScheduledThreadPool(2, daemon("agent-timer"));
    private final ExecutorService workers = Executors.newCachedThreadPool(daemon("agent-worker"));
    private final SegmentHubs hubs = new SegmentHubs();
    private final VmLocks locks = new VmLocks();
    private final VmRegistry vms;
    private final CheckpointSessions sessions;
    private final PartnerCopies partners;
    private final StorageTargets targets;
    private final Flushes flushes;
    private final StoredCatalog catalog;
    private final StoredLoads loads;
    private final Restarts restarts;
    private final ResumeGuard resumeGuard;
    private final Transfers transfers;
    private volatile Level0Replication replication;

    public AgentService(String node, VmRuntime runtime, RendezvousClock clock) {
        this(node, runtime, clock, runtime.config().workDir().resolve("level1"));
    }

    /** @param level1 this node's level-1 directory (node-local disk) for stored checkpoints */
    public AgentService(String node, VmRuntime runtime, RendezvousClock clock, Path level1) {
        this(node, runtime, clock, level1, new Level0Transfers(runtime));
    }

    /** An agent whose transfers come from {@code transfers} (simulated VMs for the coordinator's scale benchmark, test fakes). */
    public AgentService(String node, VmRuntime runtime, RendezvousClock clock, Path level1, TransferFactory transfers) {
        this.node = node;
        this.runtime = runtime;
        this.clock = clock;
        GuestTime guestTime = new GuestTime();
        VmStateStreams streams = new VmStateStreams(runtime.config().workDir().resolve("s"));
        this.transfers = new Transfers(node);
        this.vms = new VmRegistry(node, runtime, locks, hubs);
        this.resumeGuard = new ResumeGuard(node, timers, workers);
        PauseJournal journal = new PauseJournal(runtime.config().workDir().resolve("paused"));
        this.partners = new PartnerCopies(node, runtime, workers, timers);
        this.sessions = new CheckpointSessions(node, vms, locks, transfers, guestTime, clock, timers, workers, resumeGuard, journal,
                partners::promisedMiB);
        this.replication = new Level0Replication(node, new PartnerStreamSender(node, null), this.transfers);
        this.targets = new StorageTargets(level1);
        this.flushes = new Flushes(node, targets, streams, runtime.config(), this.transfers);
        this.catalog = new StoredCatalog(node, targets);
        this.loads = new StoredLoads(node, runtime, targets, streams, this.transfers);
        this.restarts = new Restarts(node, vms, sessions, partners, loads, guestTime, clock, workers, timers, journal);
        runtime.forgetEarlierLevel0();
        workers.submit(sessions::resumeWhatAnEarlierAgentPaused);
    }

    public String node() {
        return node;
    }

    /**
     * This node lends at most {@code mib} of memory to other nodes' level-0 copies (beyond it, room for one is refused
     * before the checkpoint's cut). Without it, only the node's memory bounds them.
     */
    public AgentService lendingAtMost(long mib) {
        partners.lendAtMost(mib);
        return this;
    }

    /**
     * Held streams go to partner nodes over the agents' mutual TLS: {@code tls} gives, for a node, this agent's identity
     * and trust in that node's agent alone. Without it this agent sends no VM's state to another node.
     */
    public AgentService sendingCopiesWith(java.util.function.Function<String, javax.net.ssl.SSLSocketFactory> tls) {
        this.replication = new Level0Replication(node, new PartnerStreamSender(node, tls), transfers);
        return this;
    }

    /** Other nodes' held streams come in on this agent's partner listener, at {@code port}. */
    public void takeStreamsOn(int port) {
        partners.streamsArriveOn(port);
    }

    /** Which runtime this agent drives: "local" or "kubevirt". */
    public String runtimeKind() {
        return runtime.kind();
    }

    public Instant now() {
        return clock.now();
    }

    /** This node's level-1 directory. */
    public Path level1() {
        return targets.level1();
    }

    /**
     * Makes this agent host the L2 segment hub of every VM it starts, as in local mode where one
     * agent runs the whole VC. (With several agents, whoever owns the VC hosts the hubs.)
     */
    public AgentService hostingSegments() {
        hubs.host();
        return this;
    }

    // ---------------------------------------------------------------- VMs

    public VmInfo startVm(VmSpec spec) throws AgentException, InterruptedException {
        return vms.start(spec);
    }

    public List<VmInfo> vms() {
        return vms.list();
    }

    /** The launcher pods of the VMs the operator is about to checkpoint or restore (KubeVirt), by VM name. */
    public void expectPods(java.util.Map<String, io.mekha.model.PodIdentity> pods) throws AgentException {
        vms.expectPods(pods);
    }

    public VmInfo vm(String name) throws AgentException {
        return vms.info(name);
    }

    /** The QEMU that is VM {@code name} now (after a restart, the restored one), for callers in this process. */
    public QemuVm qemu(String name) throws AgentException {
        return vms.require(name);
    }

    /** VMs this node paused for a checkpoint and is still getting running again (its resume guard is at work). */
    public List<String> stillPausedByMekha() {
        return resumeGuard.stillPaused();
    }

    /** Level 0 on this node now: the whole copies held in memory (own and partners') and their bytes. */
    public record Level0Usage(int copies, long bytes) {}

    /**
     * What this node holds at level 0 now: every VM copy of a complete checkpoint that still holds a whole state, its own
     * and the partner copies. A held stream counts its bytes; a shadow QEMU the guest memory it keeps.
     */
    public Level0Usage level0Usage() {
        int copies = 0;
        long bytes = 0;
        List<Level0Holding> holdings = new java.util.ArrayList<>(sessions.allVms());
        holdings.addAll(partners.all());
        for (Level0Holding h : holdings) {
            if (h.holds()) {
                copies++;
                bytes += h.heldBytes();
            }
        }
        return new Level0Usage(copies, bytes);
    }

    /** What the flushes of this node wrote to one level since the agent started: bytes, and the time the writes took. */
    public record FlushTotal(io.mekha.storage.StorageLevel level, long bytes, Duration took) {}

    /** Per stored level (L1, L2), what this node's flushes wrote since the agent started. */
    public List<FlushTotal> flushTotals() {
        return List.of(flushes.total(io.mekha.storage.StorageLevel.L1), flushes.total(io.mekha.storage.StorageLevel.L2));
    }

    /** Runs a command in a VM's guest through its guest agent and returns its exit code and output. */
    public ExecResult exec(String name, ExecRequest request) throws AgentException, InterruptedException {
        if (request == null) {
            throw AgentException.invalid("a guest command needs a body: argv, and optionally stdin and timeout");
        }
        ApiChecks.duration("timeout", request.timeout(), Duration.ofHours(6), true);
        return vms.exec(name, request);
    }

    /** Stops a VM (QEMU quits, or is killed after a grace period). Refused while it is in a checkpoint. */
    public void stopVm(String name) throws AgentException {
        vms.stop(name);
    }

    // ---------------------------------------------------------------- checkpoint protocol

    public CheckpointStatus prepare(String id, PrepareRequest request) throws AgentException, InterruptedException {
        if (request == null) {
            throw AgentException.invalid("checkpoint " + id + ": the request needs a body");
        }
        ApiChecks.duration("maxLive", request.maxLive(), Duration.ofHours(1), true);
        ApiChecks.duration("completionTimeout", request.completionTimeout(), Duration.ofHours(1), true);
        ApiChecks.duration("pauseDeadline", request.pauseDeadline(), ApiChecks.MAX_PAUSE_DEADLINE, true);
        return sessions.prepare(id, request);
    }

    public CheckpointStatus suspend(String id, Instant at) throws AgentException {
        return sessions.suspend(id, ApiChecks.instant("the suspend's instant (Ts)", at, clock.now()));
    }

    public CheckpointStatus resume(String id, Instant at) throws AgentException {
        return sessions.resume(id, ApiChecks.instant("the resume's instant (Tr)", at, clock.now()));
    }

    /** Resumes at {@code at}; answers once every VM is resumed (or failed), or {@code limit} after {@code at}. */
    public CheckpointStatus resumeAndWait(String id, Instant at, Duration limit) throws AgentException, InterruptedException {
        return sessions.resumeAndWait(id, ApiChecks.instant("the resume's instant (Tr)", at, clock.now()), limit);
    }

    public CheckpointStatus abort(String id, String reason) throws AgentException {
        return sessions.abort(id, reason);
    }

    public CheckpointStatus status(String id) throws AgentException {
        return sessions.status(id);
    }

    /** The status once any VM of the checkpoint changed phase after version {@code seen}, or after {@code timeout}. */
    public CheckpointStatus awaitChange(String id, long seen, Duration timeout) throws AgentException, InterruptedException {
        return sessions.awaitChange(id, seen, timeout);
    }

    /** The status once every VM of the checkpoint is in {@code phase} (or one failed or was aborted), or after {@code timeout}. */
    public CheckpointStatus awaitPhase(String id, io.mekha.agent.api.VmPhase phase, Duration timeout) throws AgentException, InterruptedException {
        return sessions.awaitPhase(id, phase, timeout);
    }

    /** Every phase VM {@code vm} went through in checkpoint {@code id}, in order (for tests of the phase table). */
    List<io.mekha.agent.api.VmPhase> phaseHistory(String id, String vm) throws AgentException {
        return sessions.require(id).vm(vm).history();
    }

    /** Drops a checkpoint's level-0 copies on this node (aborting it first if it is not over). */
    public void discard(String id) throws AgentException {
        sessions.remove(id).ifPresent(session -> session.vms.forEach(AgentService::dropLevel0));
        restarts.dropFed(id);
    }

    /** Drops a VM's level-0 copy: a shadow Mekha still holds (not one that became the VM), or a held stream. */
    private static void dropLevel0(SessionVm v) {
        if (v.copy() instanceof ShadowCopy shadow) {
            if (shadow.qemu().role() == QemuVm.Role.SHADOW) {
                shadow.qemu().kill();
            }
        } else {
            v.copy().discard();
        }
    }

    // ---------------------------------------------------------------- restart protocol

    /**
     * Restarts VMs from a checkpoint, resuming them together at {@code at}: from L0 its shadows (or partner copies, or
     * the QEMUs fed from held streams), from L1/L2 the QEMUs {@link #loadStored loaded} from storage. Without
     * {@code at} the restart is only prepared (checked, its copies taken) and waits for {@link #armRestart}.
     *
     * @param only the VMs to restart here (null: every VM this node holds the checkpoint of)
     */
    public RestartStatus restart(String id, Instant at, String timePolicy, Duration slewPeriod, StorageLevel level, List<String> only)
            throws AgentException {
        Ids.require(id);
        if (at != null) {
            ApiChecks.instant("the restart's instant", at, clock.now());
        }
        ApiChecks.duration("slewPeriod", slewPeriod, Duration.ofHours(1), true);
        RestartStatus prepared = restarts.prepare(id, timePolicy, slewPeriod, level, only);
        return at == null ? prepared : restarts.arm(id, at);
    }

    /** Gives a prepared restart its rendezvous instant. */
    public RestartStatus armRestart(String id, Instant at) throws AgentException {
        ApiChecks.instant("the restart's instant", at, clock.now());
        return restarts.arm(id, at);
    }

    /**
     * Calls a restart off: the VMs not resumed yet stay as they were (their level-0 copies held), and every QEMU loaded
     * or fed for it stops, whether a prepare had taken it or not.
     */
    public RestartStatus callOffRestart(String id, String why) throws AgentException {
        Ids.require(id);
        String reason = why == null || why.isBlank() ? "the coordinator called it off" : why.length() > 300 ? why.substring(0, 300) + "..." : why;
        RestartStatus status = restarts.callOff(id, reason);
        dropLoaded(id); // what was loaded or fed for it and not yet taken by a prepare goes too
        return status;
    }

    /** Restarts every VM this node holds checkpoint {@code id} of in memory. */
    public RestartStatus restart(String id, Instant at, String timePolicy, Duration slewPeriod) throws AgentException {
        return restart(id, at, timePolicy, slewPeriod, StorageLevel.L0, null);
    }

    public RestartStatus restartStatus(String id) throws AgentException {
        return restarts.status(id);
    }

    /** Feeds held streams to the QEMUs waiting for them before a restart from memory; returns the VMs fed. */
    public List<String> loadLevel0(String id, List<String> only) throws AgentException, InterruptedException {
        List<String> fed = restarts.loadLevel0(id, only);
        holdLoadedAtMost(id);
        return fed;
    }

    /**
     * How long QEMUs loaded or fed for a restart wait for it: a coordinator (an operator) that went away after the load
     * never leaves them paused. Past it they are stopped; the restart, if it still comes, fails and says so.
     */
    public static final Duration LOADED_HOLD = io.mekha.agent.api.AgentDtos.LOADED_HOLD;
    private final java.util.Map<String, Long> loadRounds = new java.util.concurrent.ConcurrentHashMap<>();

    private void holdLoadedAtMost(String id) {
        long round = loadRounds.merge(id, 1L, Long::sum);
        timers.schedule(() -> {
            if (loadRounds.remove(id, round)) {
                if (loads.drop(id) | restarts.dropFed(id)) {
                    org.jboss.logging.Logger.getLogger(AgentService.class).warnf("checkpoint %s: the QEMUs loaded for its restart on node %s waited %s for it; stopped", id, node, LOADED_HOLD);
                }
            }
        }, LOADED_HOLD.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
    }

    // ---------------------------------------------------------------- level 0 on a partner node

    /** What this node lends for other nodes' level-0 copies, and what one more could take now. */
    public Level0Room level0Room() {
        return partners.room();
    }

    /** Keeps room for a copy of another node's VM, before a checkpoint's cut; refused (no room) when this node cannot lend it. */
    public PartnerCopyInfo reservePartner(String id, PartnerReservation request) throws AgentException {
        if (request != null) {
            requireKey(request.key());
            ApiChecks.host("listenHost", request.listenHost());
        }
        return partners.reserve(id, request);
    }

    public PartnerCopyInfo hostPartner(String id, PartnerShadowRequest request) throws AgentException, InterruptedException {
        if (request != null && request.listenHost() != null) { // missing fields: PartnerCopies says which
            ApiChecks.host("listenHost", request.listenHost());
            ApiChecks.notNegative("stopLate", request.stopLate(), Duration.ofMinutes(1));
            requireKey(request.key());
        }
        return partners.host(id, request);
    }

    private static void requireKey(String key) throws AgentException {
        if (!io.mekha.model.StreamKey.valid(key)) {
            throw AgentException.invalid("a partner copy needs its 'key' (64 lowercase hex digits, the same on both nodes): the stream"
                    + " between them is authenticated and encrypted with it, and no copy travels without one");
        }
    }

    /**
     * Takes another node's held stream of {@code vm} into the room kept for it (the partner listener's one call): only
     * from the agent of the node it was kept for, as {@code fromNode} (its certificate) says, with the copy's key.
     */
    public PartnerStreamReceipt receivePartnerStream(String id, String vm, String fromNode, String key, PartnerStreamHeader header,
                                                     java.io.InputStream body) throws AgentException {
        if (header != null) {
            ApiChecks.notNegative("stopLate", header.stopLate(), Duration.ofMinutes(1));
        }
        return partners.receive(id, vm, fromNode, key, header, body);
    }

    /** Whether {@link #receivePartnerStream} would take that copy, asked before its body is sent. */
    public void probePartnerStream(String id, String vm, String fromNode, String key, PartnerStreamHeader header) throws AgentException {
        partners.probe(id, vm, fromNode, key, header);
    }

    public List<PartnerCopyInfo> partners(String id) throws AgentException {
        return partners.list(id);
    }

    public void dropPartners(String id) {
        partners.drop(id);
    }

    /** Lets go of this node's copy of one VM of checkpoint {@code id} (or the room kept for it); its other copies stay. */
    public void dropPartner(String id, String vm) throws AgentException {
        Ids.require(id);
        Ids.requireVm(vm);
        partners.drop(id, vm);
    }

    /** Sends this node's copy of {@code vm} to its partner (a shadow to its QEMU, a held stream to its agent); returns once it is held there. */
    public void replicate(String id, ReplicateRequest request) throws AgentException, InterruptedException {
        if (request == null || request.vm() == null) {
            throw AgentException.invalid("a replication needs 'vm', 'uri' and 'key'");
        }
        if (request.uri() != null && request.uri().startsWith("https:")) {
            ApiChecks.partnerListener("the partner's uri", request.uri()); // a held stream, to the partner's agent
        } else {
            ApiChecks.migrationUri("the partner's uri", request.uri()); // a shadow, to the partner's waiting QEMU
        }
        requireKey(request.key());
        CheckpointSession session = sessions.find(id).orElse(null);
        if (session == null || session.vm(request.vm()) == null) {
            // not a VM of this node's: a copy it holds for another node, handed on (a node holding a VM's copy was lost)
            PartnerCopies.PartnerCopy copy = partners.held(id, request.vm());
            if (copy != null) {
                replication.forward(id, copy, request);
                return;
            }
        }
        replication.replicate(id, sessions.require(id), sessions.complete(id, request.vm()), request);
    }

    // ---------------------------------------------------------------- stored checkpoints

    /** How far this node's long transfers of checkpoint {@code id} have got (flushes, copies, loads), running or ended lately. */
    public List<io.mekha.agent.api.AgentDtos.TransferProgress> progress(String id) throws AgentException {
        Ids.require(id);
        return transfers.of(id, clock.now());
    }

    public FlushResult flush(String id, FlushRequest request) throws AgentException, InterruptedException {
        Ids.require(id);
        flushes.check(request);
        return flushes.flush(id, request, level0Holding(id, request.vm()));
    }

    /** A complete checkpoint's in-memory copy of {@code vm} on this node: its own, or one it holds for a partner. */
    private Level0Holding level0Holding(String id, String vm) throws AgentException {
        CheckpointSession session = sessions.find(id).orElse(null);
        if (session != null && session.vm(vm) != null) {
            SessionVm v = session.vm(vm);
            if (v.phase() != io.mekha.agent.api.VmPhase.RESUMED) {
                throw AgentException.conflict("checkpoint " + id + " is not complete for VM '" + vm + "' (" + v.phase() + "); nothing to save");
            }
            return v;
        }
        Level0Holding copy = partners.held(id, vm);
        if (copy == null) {
            throw AgentException.notFound("no checkpoint " + id + " of VM '" + vm + "' in memory on node " + node);
        }
        return copy;
    }

    public void publishManifest(PublishManifestRequest request) throws AgentException {
        catalog.publish(request);
    }

    public CheckpointManifest readManifest(StoredRequest request) throws AgentException {
        return catalog.read(request);
    }

    public List<StoredCheckpoint> listStored(StoredRequest request) throws AgentException {
        return catalog.list(request);
    }

    public void deleteStored(StoredRequest request) throws AgentException {
        catalog.delete(request);
    }

    public List<StoredVmResult> verifyStored(StoredVmsRequest request) throws AgentException {
        return loads.verify(request);
    }

    public List<StoredVmResult> loadStored(StoredVmsRequest request) throws AgentException, InterruptedException {
        locks.requireFree(request.vms() == null ? List.of() : request.vms());
        List<StoredVmResult> loaded = loads.load(request);
        holdLoadedAtMost(request.manifest().checkpoint());
        return loaded;
    }

    /** Stops the QEMUs loaded from storage or fed from memory for a restart of {@code id} that will not happen. */
    public void dropLoaded(String id) {
        loads.drop(id);
        restarts.dropFed(id);
    }

    private static ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    @Override
    public void close() {
        sessions.abortAll("the agent on node " + node + " is shutting down");
        timers.shutdownNow();
        workers.shutdownNow();
        runtime.close();
        hubs.close();
    }
}
