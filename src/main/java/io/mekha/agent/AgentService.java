package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.FlushResult;
import io.mekha.agent.api.AgentDtos.PartnerShadow;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.ReplicateRequest;
import io.mekha.agent.api.AgentDtos.PublishManifestRequest;
import io.mekha.agent.api.AgentDtos.StoredCheckpoint;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.AgentDtos.StoredVmResult;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.AgentDtos.RestartStatus;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.api.AgentDtos.VmRestartStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.agent.network.SegmentHub;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.agent.runtime.QemuVm;
import io.mekha.agent.runtime.VmSpec;
import io.mekha.agent.runtime.VmStartException;
import io.mekha.agent.shadow.ShadowCheckpointer;
import io.mekha.agent.time.GuestClock;
import io.mekha.agent.time.TimePolicy;
import io.mekha.agent.transfer.LiveEndingCondition;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.agent.transfer.MtdTransfer;
import io.mekha.agent.transfer.ShadowTransfer;
import io.mekha.agent.transfer.HeldStream;
import io.mekha.agent.transfer.ShadowCopy;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.TransferMode;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpEvent;
import io.mekha.qmp.QmpEventQueue;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * Everything a node does for Mekha, apart from HTTP: runs VMs, and carries out its part of the
 * checkpoint protocol (prepare, live stage, suspend at Ts, capture, resume at Tr, abort) and of
 * the restart protocol. It never leaves a VM paused: a watchdog resumes what it paused when
 * the coordinator goes silent.
 */
public final class AgentService implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(AgentService.class);
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
    private static final Duration POLL = Duration.ofMillis(20);
    /** With no suspend this long after the live stage's own bound, the coordinator is presumed gone. */
    private static final Duration SUSPEND_GRACE = Duration.ofSeconds(60);
    /** After this many, a VM that QEMU finishes early stays paused until Tr (still a consistent cut). */
    private static final int MAX_LIVE_RESTARTS = 5;

    private final String node;
    private final VmRuntime runtime;
    private final ShadowCheckpointer checkpointer;
    private final RendezvousClock clock;
    private final GuestClock guestClock;
    private final Map<String, QemuVm> vms = new ConcurrentHashMap<>();
    private final Set<String> starting = ConcurrentHashMap.newKeySet();
    private final Map<String, String> locks = new ConcurrentHashMap<>();
    private final Map<String, CheckpointSession> sessions = new ConcurrentHashMap<>();
    private final Map<String, Map<String, VmRestartStatus>> restarts = new ConcurrentHashMap<>();
    private final Map<Integer, SegmentHub> hostedSegments = new ConcurrentHashMap<>();
    private volatile boolean hostSegments;
    private final ScheduledExecutorService timers = Executors.newScheduledThreadPool(2, daemon("agent-timer"));
    private final ExecutorService workers = Executors.newCachedThreadPool(daemon("agent-worker"));
    private final AgentStorage storage;

    public AgentService(String node, VmRuntime runtime, RendezvousClock clock) {
        this(node, runtime, clock, runtime.config().workDir().resolve("level1"));
    }

    /** @param level1 this node's level-1 directory (node-local disk) for stored checkpoints */
    public AgentService(String node, VmRuntime runtime, RendezvousClock clock, java.nio.file.Path level1) {
        this.node = node;
        this.runtime = runtime;
        this.checkpointer = new ShadowCheckpointer(runtime);
        this.clock = clock;
        this.guestClock = new GuestClock(java.time.Clock.systemUTC());
        this.storage = new AgentStorage(node, runtime, level1, this::completeShadow);
    }

    public String node() {
        return node;
    }

    /**
     * Makes this agent host the L2 segment hub of every VM it starts, as in local mode where one
     * agent runs the whole VC. (With several agents, whoever owns the VC hosts the hubs.)
     */
    public AgentService hostingSegments() {
        this.hostSegments = true;
        return this;
    }

    private void ensureSegment(VmSpec spec) throws AgentException {
        if (!hostSegments || spec.network() == null) {
            return;
        }
        try {
            hostedSegments.computeIfAbsent(spec.network().hubPort(), port -> {
                try {
                    return SegmentHub.open(spec.network().segment(), port);
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        } catch (java.io.UncheckedIOException e) {
            throw new AgentException(422, "VM '" + spec.name() + "': " + e.getCause().getMessage(), e.getCause());
        }
    }

    public Instant now() {
        return clock.now();
    }

    // ---------------------------------------------------------------- VMs

    public VmInfo startVm(VmSpec spec) throws AgentException, InterruptedException {
        if (spec == null || spec.name() == null || !ID.matcher(spec.name()).matches()) {
            throw AgentException.badRequest("a VM needs a name of letters, digits, '.', '_' or '-'");
        }
        if (vms.containsKey(spec.name()) || !starting.add(spec.name())) {
            throw AgentException.conflict("VM '" + spec.name() + "' already runs on node " + node);
        }
        try {
            ensureSegment(spec);
            QemuVm vm = runtime.start(spec);
            vms.put(spec.name(), vm);
            return info(vm);
        } catch (VmStartException e) {
            throw new AgentException(422, e.getMessage(), e);
        } finally {
            starting.remove(spec.name());
        }
    }

    public List<VmInfo> vms() {
        discover();
        return vms.values().stream().map(this::info).toList();
    }

    /** Which runtime this agent drives: "local" or "kubevirt". */
    public String runtimeKind() {
        return runtime.kind();
    }

    /** Takes in the VMs the runtime finds running by itself (KubeVirt's VMIs), and lets go of those that went away. */
    private void discover() {
        List<QemuVm> found = runtime.discover();
        for (QemuVm vm : found) {
            vms.compute(vm.name(), (name, known) -> known == null || known.role() == QemuVm.Role.ATTACHED || !known.isAlive() ? vm : known);
        }
        vms.values().removeIf(vm -> vm.role() == QemuVm.Role.ATTACHED && !found.contains(vm) && !locks.containsKey(vm.name()));
    }

    public VmInfo vm(String name) throws AgentException {
        return info(requireVm(name));
    }

    /** Runs a command in a VM's guest through its guest agent and returns its exit code and output. */
    public io.mekha.agent.runtime.GuestCommands.Result exec(String name, io.mekha.agent.api.AgentDtos.ExecRequest request)
            throws AgentException, InterruptedException {
        QemuVm vm = requireVm(name);
        if (!vm.isAlive()) {
            throw AgentException.conflict("VM '" + name + "' on node " + node + " is not running");
        }
        try {
            return io.mekha.agent.runtime.GuestCommands.run(vm, request.argv(), request.stdin(),
                    request.timeout() == null ? Duration.ofSeconds(60) : request.timeout());
        } catch (IllegalArgumentException e) {
            throw AgentException.badRequest(e.getMessage());
        } catch (QmpException e) {
            throw AgentException.conflict("VM '" + name + "': " + e.getMessage());
        }
    }

    /** Stops a VM (QEMU quits, or is killed after a grace period). Refused while it is in a checkpoint. */
    public void stopVm(String name) throws AgentException {
        QemuVm vm = requireVm(name);
        if (vm.role() == QemuVm.Role.ATTACHED) {
            throw AgentException.conflict("VM '" + name + "' is KubeVirt's: stop it through KubeVirt (virtctl stop), not through Mekha");
        }
        String lock = locks.get(name);
        if (lock != null) {
            throw AgentException.conflict("VM '" + name + "' is in checkpoint " + lock + "; abort it first");
        }
        vms.remove(name);
        vm.shutdown(Duration.ofSeconds(5));
    }

    private VmInfo info(QemuVm vm) {
        String state;
        try {
            state = vm.isAlive() ? vm.qmp().execute("query-status", null, Duration.ofSeconds(5)).path("status").asText() : "dead";
        } catch (QmpException e) {
            state = vm.isAlive() ? "unreachable" : "dead";
        }
        return new VmInfo(vm.name(), node, state, vm.pid(), vm.accelerator().name(), locks.get(vm.name()),
                vm.paths().console().toString(), vm.spec());
    }

    private QemuVm requireVm(String name) throws AgentException {
        QemuVm vm = vms.get(name);
        if (vm == null || vm.role() == QemuVm.Role.ATTACHED) {
            discover();
            vm = vms.get(name);
        }
        if (vm == null) {
            throw AgentException.notFound("no VM '" + name + "' on node " + node + " (it runs " + vms.keySet() + ")");
        }
        return vm;
    }

    // ---------------------------------------------------------------- checkpoint protocol

    /** Locks the VMs, starts a shadow for each and starts the live stage. */
    public CheckpointStatus prepare(String id, PrepareRequest request) throws AgentException, InterruptedException {
        requireId(id);
        if (sessions.containsKey(id)) {
            throw AgentException.conflict("checkpoint " + id + " already exists on node " + node);
        }
        if (request.vms() == null || request.vms().isEmpty()) {
            throw AgentException.badRequest("checkpoint " + id + ": name at least one VM");
        }
        TransferMode mode;
        LiveStageBounds bounds;
        try {
            mode = TransferMode.parse(request.mode() == null ? "MTD" : request.mode());
            bounds = LiveStageBounds.defaults();
            if (request.maxLive() != null) {
                bounds = bounds.withMaxLive(request.maxLive());
            }
            if (request.completionTimeout() != null) {
                bounds = bounds.withCompletionTimeout(request.completionTimeout());
            }
            for (Long limit : request.bandwidthLimits() == null ? List.<Long>of() : request.bandwidthLimits().values()) {
                bounds.withBandwidthLimit(limit); // validates
            }
        } catch (IllegalArgumentException e) {
            throw AgentException.badRequest("checkpoint " + id + ": " + e.getMessage());
        }
        List<QemuVm> sources = new ArrayList<>();
        for (String name : request.vms()) {
            sources.add(requireVm(name));
        }
        TimePolicy policy = timePolicy(id, request.timePolicy());
        requireGuestAgents(id, policy, sources, true);
        List<String> locked = new ArrayList<>();
        try {
            for (QemuVm vm : sources) {
                String holder = locks.putIfAbsent(vm.name(), id);
                if (holder != null) {
                    throw AgentException.conflict("VM '" + vm.name() + "' is already in checkpoint " + holder
                            + "; one checkpoint or restore at a time per VM");
                }
                locked.add(vm.name());
            }
            // the guest clocks, read while every VM surely runs (a paused guest's agent cannot answer, and nothing
            // may delay the stop at Ts); extrapolated to the cut, over a live stage of seconds
            Map<String, GuestClock.Reading> clocksBefore = new ConcurrentHashMap<>();
            for (QemuVm vm : sources) {
                GuestClock.Reading reading = readGuestClock(vm);
                if (reading != null) {
                    clocksBefore.put(vm.name(), reading);
                }
            }
            List<CheckpointSession.VmTransfer> transfers = new ArrayList<>();
            try {
                for (QemuVm vm : sources) {
                    long limit = request.bandwidthLimits() == null ? 0 : request.bandwidthLimits().getOrDefault(vm.name(), 0L);
                    ShadowTransfer transfer = checkpointer.prepare(vm, mode, bounds.withBandwidthLimit(limit));
                    CheckpointSession.VmTransfer t = new CheckpointSession.VmTransfer(vm, transfer);
                    t.clockBeforeLive = clocksBefore.get(vm.name());
                    transfers.add(t);
                }
                for (CheckpointSession.VmTransfer t : transfers) {
                    t.transfer.startLive();
                    if (mode == TransferMode.MTD) {
                        t.phase = VmPhase.LIVE;
                    } else {
                        t.liveDoneAt = clock.now();
                        t.phase = VmPhase.LIVE_DONE;
                    }
                }
            } catch (TransferException | QmpException | RuntimeException e) {
                transfers.forEach(t -> t.transfer.abort());
                throw new AgentException(500, "checkpoint " + id + " on node " + node + ": prepare failed: " + e.getMessage(), e);
            }
            Duration pauseDeadline = request.pauseDeadline() == null ? Duration.ofSeconds(60) : request.pauseDeadline();
            CheckpointSession session = new CheckpointSession(id, transfers, pauseDeadline, policy);
            sessions.put(id, session);
            session.poller = timers.scheduleWithFixedDelay(() -> pollLive(session), 0, POLL.toMillis(), TimeUnit.MILLISECONDS);
            Duration noSuspendLimit = bounds.maxLive().multipliedBy(2).plus(SUSPEND_GRACE);
            session.watchdog = timers.schedule(() -> abandonIfNotSuspended(session, noSuspendLimit),
                    noSuspendLimit.toMillis(), TimeUnit.MILLISECONDS);
            LOG.infof("checkpoint %s: %s live stage started for %s on node %s", id, mode.displayName(), request.vms(), node);
            return status(session);
        } catch (AgentException | RuntimeException e) {
            locked.forEach(locks::remove);
            throw e;
        }
    }

    private static TimePolicy timePolicy(String id, String text) throws AgentException {
        try {
            return text == null ? TimePolicy.VIRTUAL : TimePolicy.parse(text);
        } catch (IllegalArgumentException e) {
            throw AgentException.badRequest("checkpoint " + id + ": " + e.getMessage());
        }
    }

    /** Step and Slew act through the guest agent: refuse them up front, before anything is paused, where there is none. */
    private void requireGuestAgents(String id, TimePolicy policy, List<QemuVm> vms, boolean probe) throws AgentException {
        if (!policy.needsGuestAgent()) {
            return;
        }
        for (QemuVm vm : vms) {
            if (vm.role() == QemuVm.Role.ATTACHED) {
                throw new AgentException(422, "checkpoint " + id + ": VM '" + vm.name() + "' runs in KubeVirt, whose virt-launcher holds"
                        + " the guest agent's channel: Mekha cannot set the guest clock there, so the " + policy.displayName()
                        + " time policy is not available on KubeVirt yet; use Virtual. Nothing was paused.");
            }
            if (!vm.spec().guestAgent()) {
                throw new AgentException(422, "checkpoint " + id + ": VM '" + vm.name() + "' has no guest agent port, and the "
                        + policy.displayName() + " time policy sets the guest clock through qemu-guest-agent; use Virtual, or give"
                        + " the VM 'guestAgent: true' and run qemu-guest-agent in it. Nothing was paused.");
            }
            if (probe && !guestClock.agentAnswers(vm)) {
                throw new AgentException(422, "checkpoint " + id + ": the guest agent of VM '" + vm.name() + "' does not answer, and the "
                        + policy.displayName() + " time policy needs it; start qemu-guest-agent in the guest or use Virtual."
                        + " Nothing was paused.");
            }
        }
    }

    private void pollLive(CheckpointSession session) {
        synchronized (session.pollLock) {
            for (CheckpointSession.VmTransfer t : session.vms) {
                if (t.phase != VmPhase.LIVE && t.phase != VmPhase.LIVE_DONE) {
                    continue;
                }
                try {
                    LiveEndingCondition.Reason reason = t.transfer.pollLive();
                    if (reason == LiveEndingCondition.Reason.COMPLETED_BY_QEMU && t.liveRestarts < MAX_LIVE_RESTARTS) {
                        restartLiveStage(session, t);
                        continue;
                    }
                    if (reason != LiveEndingCondition.Reason.NOT_MET && t.phase == VmPhase.LIVE) {
                        t.liveEnd = reason;
                        if (t.transfer instanceof MtdTransfer mtd && reason != LiveEndingCondition.Reason.COMPLETED_BY_QEMU) {
                            mtd.hold();
                        }
                        t.liveDoneAt = clock.now();
                        t.phase = VmPhase.LIVE_DONE;
                    }
                } catch (QmpException | TransferException | RuntimeException e) {
                    Duration grace = Duration.ofSeconds(1);
                    fail(t, t.source.exitedWithin(grace) ? "its QEMU (pid " + t.source.pid() + ") exited during the live stage"
                            : t.transfer.level0().lost() ? t.transfer.level0().describe() + " broke during the live stage ("
                            + e.getMessage() + ")"
                            : "live stage failed: " + e.getMessage());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /**
     * QEMU finished the migration by itself (a pass found nothing dirty) and so paused the VM long
     * before Ts. Rather than keep it paused while the other VMs finish their live stage, resume it
     * at once and start its live stage over with a fresh shadow.
     */
    private void restartLiveStage(CheckpointSession session, CheckpointSession.VmTransfer t)
            throws TransferException, QmpException, InterruptedException {
        t.liveRestarts++;
        LOG.infof("checkpoint %s: QEMU finished VM '%s' early (idle guest); resuming it and restarting its live stage (%d)",
                session.id, t.source.name(), t.liveRestarts);
        ShadowTransfer old = t.transfer;
        Instant stoppedAt = old.stoppedByQemuAt();
        old.abort();
        if (stoppedAt != null) {
            t.pausedDuringLive = t.pausedDuringLive.plus(Duration.between(stoppedAt, clock.now()));
        }
        ShadowTransfer fresh = checkpointer.prepare(t.source, old.mode(), old.bounds());
        t.transfer = fresh;
        t.liveEnd = LiveEndingCondition.Reason.NOT_MET;
        t.liveDoneAt = null;
        t.phase = VmPhase.LIVE;
        fresh.startLive();
    }

    /** Stops every VM of the checkpoint at {@code at} (this agent's clock), then waits for the shadows to fill. */
    public CheckpointStatus suspend(String id, Instant at) throws AgentException {
        CheckpointSession session = requireSession(id);
        synchronized (session.pollLock) {
            for (CheckpointSession.VmTransfer t : session.vms) {
                if (t.phase != VmPhase.LIVE && t.phase != VmPhase.LIVE_DONE) {
                    throw AgentException.conflict("checkpoint " + id + ": VM '" + t.source.name() + "' is " + t.phase
                            + ", cannot suspend" + (t.error == null ? "" : " (" + t.error + ")"));
                }
            }
            session.cancelTimers();
            session.vms.forEach(t -> t.phase = VmPhase.SUSPENDING);
        }
        for (CheckpointSession.VmTransfer t : session.vms) {
            workers.submit(() -> suspendOne(session, t, at));
        }
        // the watchdog: never leave a VM paused if the coordinator does not come back with a resume
        Duration untilDeadline = Duration.between(clock.now(), at).plus(session.pauseDeadline);
        session.watchdog = timers.schedule(() -> resumeOnSilence(session), Math.max(0, untilDeadline.toMillis()), TimeUnit.MILLISECONDS);
        return status(session);
    }

    private void suspendOne(CheckpointSession session, CheckpointSession.VmTransfer t, Instant at) {
        try {
            clock.sleepUntil(at);
            t.stopIssuedAt = clock.now();
            if (t.clockBeforeLive != null) {
                t.guestClockAtCut = t.clockBeforeLive.guestAt(t.stopIssuedAt).minus(t.pausedDuringLive);
            }
            t.transfer.suspend();
            t.phase = VmPhase.SUSPENDED;
            t.transfer.awaitCaptured();
            t.capturedAt = clock.now();
            t.phase = VmPhase.CAPTURED;
        } catch (Exception e) {
            fail(t, "suspend/capture failed: " + e.getMessage());
        }
    }

    /** The guest's clock, or null when the VM has no agent or it does not answer: the clock is a figure, not a must. */
    private GuestClock.Reading readGuestClock(QemuVm vm) {
        if (!vm.spec().guestAgent()) {
            return null;
        }
        try {
            return guestClock.read(vm);
        } catch (QmpException e) {
            LOG.debugf("VM '%s': no guest clock reading: %s", vm.name(), e.getMessage());
            return null;
        }
    }

    /** Lets every VM of the checkpoint run again at {@code at}: only once all of them are captured (the barrier). */
    public CheckpointStatus resume(String id, Instant at) throws AgentException {
        CheckpointSession session = requireSession(id);
        if (!session.all(VmPhase.CAPTURED)) {
            throw AgentException.conflict("checkpoint " + id + ": cannot resume before every VM on node " + node
                    + " is captured: " + phases(session));
        }
        ScheduledFuture<?> w = session.watchdog;
        if (w != null) {
            w.cancel(false);
        }
        for (CheckpointSession.VmTransfer t : session.vms) {
            workers.submit(() -> resumeOne(session, t, at));
        }
        return status(session);
    }

    private void resumeOne(CheckpointSession session, CheckpointSession.VmTransfer t, Instant at) {
        try {
            clock.sleepUntil(at);
            t.transfer.resumeSource();
            t.resumedAt = clock.now();
            t.figures = t.transfer.figures(t.liveEndText(), t.passes());
            t.phase = VmPhase.RESUMED;
        } catch (Exception e) {
            fail(t, "resume failed: " + e.getMessage());
        } finally {
            locks.remove(t.source.name(), session.id);
        }
    }

    /** Undoes the checkpoint: cancels transfers, resumes what Mekha paused, removes the shadows. */
    public CheckpointStatus abort(String id, String reason) throws AgentException {
        CheckpointSession session = requireSession(id);
        synchronized (session.pollLock) {
            session.cancelTimers();
            for (CheckpointSession.VmTransfer t : session.vms) {
                if (t.phase == VmPhase.RESUMED) {
                    continue; // complete: the checkpoint of this VM stays until discarded
                }
                t.transfer.abort();
                if (!t.phase.terminal()) {
                    t.phase = VmPhase.ABORTED;
                    t.error = "aborted: " + (reason == null ? "by the coordinator" : reason);
                }
                locks.remove(t.source.name(), id);
            }
        }
        LOG.infof("checkpoint %s aborted on node %s: %s", id, node, reason);
        return status(session);
    }

    public CheckpointStatus status(String id) throws AgentException {
        return status(requireSession(id));
    }

    private CheckpointStatus status(CheckpointSession session) {
        return new CheckpointStatus(session.id, node, session.vms.stream().map(CheckpointSession.VmTransfer::status).toList());
    }

    /** Drops a checkpoint's shadows (its level-0 copy) on this node. */
    public void discard(String id) throws AgentException {
        CheckpointSession session = requireSession(id);
        if (session.vms.stream().anyMatch(t -> !t.phase.terminal())) {
            abort(id, "discarded");
        }
        sessions.remove(id);
        for (CheckpointSession.VmTransfer t : session.vms) {
            dropLevel0(t);
        }
        Map<String, QemuVm> fed = level0Fed.remove(id);
        if (fed != null) {
            fed.values().forEach(QemuVm::kill);
        }
    }

    private void fail(CheckpointSession.VmTransfer t, String why) {
        LOG.errorf("VM '%s' on node %s: %s", t.source.name(), node, why);
        t.error = why;
        t.phase = VmPhase.FAILED;
        t.transfer.abort();
    }

    private void resumeOnSilence(CheckpointSession session) {
        if (session.vms.stream().anyMatch(t -> t.phase == VmPhase.RESUMED)) {
            return;
        }
        LOG.errorf("checkpoint %s: no resume within %s of the suspend; resuming every VM this node paused",
                session.id, session.pauseDeadline);
        try {
            abort(session.id, "no resume from the coordinator within " + session.pauseDeadline + " of the suspend; VMs resumed by the agent");
        } catch (AgentException e) {
            LOG.error("watchdog abort failed", e);
        }
    }

    private void abandonIfNotSuspended(CheckpointSession session, Duration limit) {
        if (session.any(VmPhase.LIVE) || session.any(VmPhase.LIVE_DONE)) {
            try {
                abort(session.id, "no suspend from the coordinator within " + limit + "; shadows removed");
            } catch (AgentException e) {
                LOG.error("watchdog abort failed", e);
            }
        }
    }

    // ---------------------------------------------------------------- restart protocol

    /**
     * Restarts VMs from a complete checkpoint's shadows, resuming them together at {@code at}:
     * each VM's current QEMU (crashed or not) is killed first, so two copies never run.
     */
    public RestartStatus restart(String id, Instant at, String timePolicy, Duration slewPeriod) throws AgentException {
        return restart(id, at, timePolicy, slewPeriod, StorageLevel.L0, null);
    }

    /**
     * Restarts VMs from a checkpoint, resuming them together at {@code at}: from L0 its shadows,
     * from L1/L2 the QEMUs {@link #loadStored loaded} from storage. Each VM's current QEMU
     * (crashed or not) is killed first, so two copies never run.
     */
    /**
     * @param only the VMs to restart here (null: every VM this node holds the checkpoint of); from L0 a VM's copy may be
     *     this node's own shadow or a partner copy it holds for another node
     */
    public RestartStatus restart(String id, Instant at, String timePolicy, Duration slewPeriod, StorageLevel level, List<String> only)
            throws AgentException {
        Duration slew = slewPeriod == null ? Duration.ofSeconds(30) : slewPeriod;
        List<RestartSource> sources = new ArrayList<>();
        TimePolicy policy;
        if (level == null || level == StorageLevel.L0) {
            CheckpointSession session = sessions.get(id);
            Map<String, PartnerCopy> held = partners.getOrDefault(id, Map.of());
            if (session == null && held.isEmpty()) {
                requireSession(id);
            }
            String defaultPolicy = session != null ? session.timePolicy.name()
                    : held.values().iterator().next().request.timePolicy();
            policy = timePolicy(id, timePolicy != null ? timePolicy : defaultPolicy);
            List<CheckpointSession.VmTransfer> mine = session == null ? List.of()
                    : session.vms.stream().filter(t -> only == null || only.contains(t.source.name())).toList();
            List<PartnerCopy> copies = held.values().stream().filter(c -> only != null && only.contains(c.request.vm())
                    && mine.stream().noneMatch(t -> t.source.name().equals(c.request.vm()))).toList();
            requireGuestAgents(id, policy, mine.stream().map(t -> t.source).toList(), false);
            for (CheckpointSession.VmTransfer t : mine) {
                if (t.phase != VmPhase.RESUMED) {
                    throw AgentException.conflict("checkpoint " + id + " is not complete on node " + node + ": " + phases(session));
                }
            }
            for (PartnerCopy c : copies) {
                if (!"held".equals(c.state) || !c.qemu.isAlive() || c.qemu.role() != QemuVm.Role.SHADOW) {
                    throw AgentException.conflict("checkpoint " + id + ": the copy of VM '" + c.request.vm() + "' on node " + node
                            + " is " + (c.qemu.isAlive() ? c.state : "gone"));
                }
                sources.add(new RestartSource(c.request.vm(), c.qemu, null, c.request.guestClockAtCut(), c.request.stoppedAt()));
            }
            for (CheckpointSession.VmTransfer t : mine) {
                if (t.transfer.level0() instanceof HeldStream stream) {
                    if (!stream.complete()) {
                        throw AgentException.conflict("checkpoint " + id + ": the stream of VM '" + t.source.name()
                                + "' held in memory is gone; this checkpoint can no longer restart from memory");
                    }
                    continue;
                }
                if (!t.transfer.shadow().isAlive()) {
                    throw AgentException.conflict("checkpoint " + id + ": the shadow of VM '" + t.source.name()
                            + "' is gone; this checkpoint can no longer restart from memory");
                }
                if (t.transfer.shadow().role() != QemuVm.Role.SHADOW) {
                    throw AgentException.conflict("checkpoint " + id + ": VM '" + t.source.name() + "' was already restarted from it");
                }
            }
            for (CheckpointSession.VmTransfer t : mine) {
                QemuVm loaded = t.transfer.level0() instanceof HeldStream ? takeFed(id, t) : t.transfer.shadow();
                sources.add(new RestartSource(t.source.name(), loaded, t.transfer.level0() instanceof HeldStream ? null : t.source,
                        t.guestClockAtCut, t.stopIssuedAt));
            }
        } else {
            List<AgentStorage.LoadedVm> loaded = storage.takeLoaded(id);
            try {
                policy = timePolicy(id, timePolicy != null ? timePolicy : loaded.get(0).checkpointTimePolicy());
                requireGuestAgents(id, policy, loaded.stream().map(AgentStorage.LoadedVm::qemu).toList(), false);
            } catch (AgentException e) {
                loaded.forEach(l -> l.qemu().kill());
                throw e;
            }
            for (AgentStorage.LoadedVm l : loaded) {
                sources.add(new RestartSource(l.entry().name(), l.qemu(), null, l.entry().guestClockAtCut(), l.entry().stoppedAt()));
            }
        }
        Map<String, VmRestartStatus> states = new ConcurrentHashMap<>();
        restarts.put(id, states);
        for (RestartSource source : sources) {
            states.put(source.vm(), new VmRestartStatus(source.vm(), "restarting", null, null, null, policy.displayName(),
                    source.guestClockAtCut(), source.hostTimeAtCut(), null, null, null));
            workers.submit(() -> restartOne(source, at, policy, slew, states));
        }
        return restartStatus(id);
    }

    /** QEMUs fed from held streams ahead of a restart from memory, by checkpoint and VM. */
    private final Map<String, Map<String, QemuVm>> level0Fed = new ConcurrentHashMap<>();

    /**
     * Readies a restart from memory where level 0 is a held stream (KubeVirt): feeds each VM's
     * stream to the QEMU waiting for it (the restored VMI's), in parallel, and returns once every
     * one is loaded and paused at the cut, so that the coordinator picks Tr after the slow part.
     * Shadows need nothing: they are loaded already. Returns the VMs fed.
     */
    public List<String> loadLevel0(String id, List<String> only) throws AgentException, InterruptedException {
        requireId(id);
        CheckpointSession session = sessions.get(id);
        if (session == null) {
            return List.of(); // a node holding partner copies only: they are shadows, loaded already
        }
        List<CheckpointSession.VmTransfer> streams = session.vms.stream()
                .filter(t -> (only == null || only.contains(t.source.name())) && t.transfer.level0() instanceof HeldStream).toList();
        for (CheckpointSession.VmTransfer t : streams) {
            if (t.phase != VmPhase.RESUMED || !((HeldStream) t.transfer.level0()).complete()) {
                throw AgentException.conflict("checkpoint " + id + " is not complete in memory on node " + node + ": " + phases(session));
            }
        }
        Map<String, QemuVm> fed = level0Fed.computeIfAbsent(id, k -> new ConcurrentHashMap<>());
        List<java.util.concurrent.Future<?>> feeding = new ArrayList<>();
        Map<String, String> errors = new ConcurrentHashMap<>();
        for (CheckpointSession.VmTransfer t : streams) {
            feeding.add(workers.submit(() -> {
                try {
                    fed.put(t.source.name(), storage.feedHeld((HeldStream) t.transfer.level0(), t.source.spec(), t.source.accelerator()));
                } catch (AgentException e) {
                    errors.put(t.source.name(), e.getMessage());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
        }
        for (java.util.concurrent.Future<?> f : feeding) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                errors.put("?", String.valueOf(e.getCause()));
            }
        }
        if (!errors.isEmpty()) {
            throw new AgentException(500, "checkpoint " + id + " on node " + node + ": loading from memory failed: " + errors);
        }
        return streams.stream().map(t -> t.source.name()).toList();
    }

    /** The QEMU fed from a VM's held stream by {@link #loadLevel0}; fed now if it was not (then the resume may come late). */
    private QemuVm takeFed(String id, CheckpointSession.VmTransfer t) throws AgentException {
        QemuVm fed = level0Fed.getOrDefault(id, Map.of()).remove(t.source.name());
        if (fed != null) {
            return fed;
        }
        try {
            return storage.feedHeld((HeldStream) t.transfer.level0(), t.source.spec(), t.source.accelerator());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AgentException(500, "interrupted while loading VM '" + t.source.name() + "' from memory", e);
        }
    }

    /** Drops a VM's level-0 copy: a shadow Mekha still holds (not one that became the VM), or a held stream. */
    private static void dropLevel0(CheckpointSession.VmTransfer t) {
        if (t.transfer.level0() instanceof ShadowCopy shadow) {
            if (shadow.qemu().role() == QemuVm.Role.SHADOW) {
                shadow.qemu().kill();
            }
        } else {
            t.transfer.level0().discard();
        }
    }

    /** One VM to restart: its paused, loaded QEMU and what it needs for the time policy. */
    private record RestartSource(String vm, QemuVm shadow, QemuVm previous, Instant guestClockAtCut, Instant hostTimeAtCut) {}

    private void restartOne(RestartSource source, Instant at, TimePolicy policy, Duration slewPeriod,
                            Map<String, VmRestartStatus> states) {
        String name = source.vm();
        QemuVm shadow = source.shadow();
        try {
            QemuVm current = vms.get(name);
            if (current != null && current != shadow && current.isAlive()) {
                current.kill();
            }
            if (source.previous() != null && source.previous().isAlive()) {
                source.previous().kill();
            }
            try (QmpEventQueue events = shadow.qmp().listen(Set.of("RESUME"))) {
                shadow.promote();
                clock.sleepUntil(at);
                shadow.qmp().execute("cont");
                Instant resumedAt = clock.now();
                QmpEvent resume = events.poll(Duration.ofSeconds(2));
                vms.put(name, shadow);
                // Slew moves the clock from the moment it starts: the restart's own reading is the one just before it,
                // not one taken while the slew already runs (under load that came ~0.1 s late, i.e. ~0.26 s of slew)
                GuestClock.Reading beforeSlew = policy == TimePolicy.SLEW ? readGuestClock(shadow) : null;
                String note = applyTimePolicy(shadow, policy, slewPeriod);
                GuestClock.Reading after = beforeSlew != null ? beforeSlew : readGuestClock(shadow);
                states.put(name, new VmRestartStatus(name, "running", resumedAt, resume == null ? null : resume.timestamp(), null,
                        policy.displayName(), source.guestClockAtCut(), source.hostTimeAtCut(), after == null ? null : after.guest(),
                        after == null ? null : after.host(), note));
            }
        } catch (Exception e) {
            LOG.errorf("restart of VM '%s' on node %s failed: %s", name, node, e.getMessage());
            states.put(name, new VmRestartStatus(name, "failed", null, null, e.getMessage(), policy.displayName(), source.guestClockAtCut(),
                    source.hostTimeAtCut(), null, null, null));
        }
    }

    private String applyTimePolicy(QemuVm vm, TimePolicy policy, Duration slewPeriod) throws QmpException {
        return switch (policy) {
            case VIRTUAL -> "guest clocks continue from the cut";
            case STEP -> {
                guestClock.step(vm);
                yield "guest realtime stepped to host time";
            }
            case SLEW -> {
                Duration gap = guestClock.slew(vm, slewPeriod);
                yield "guest realtime slewing forward " + gap.toMillis() + " ms over " + slewPeriod.toMillis() + " ms";
            }
        };
    }

    public RestartStatus restartStatus(String id) throws AgentException {
        Map<String, VmRestartStatus> states = restarts.get(id);
        if (states == null) {
            throw AgentException.notFound("no restart from checkpoint " + id + " on node " + node);
        }
        return new RestartStatus(id, node, List.copyOf(states.values()));
    }

    // ---------------------------------------------------------------- stored checkpoints

    /** A complete checkpoint's in-memory copy of {@code vm} on this node (its own shadow or a partner copy), for saving it. */
    private AgentStorage.ShadowRef completeShadow(String id, String vm) throws AgentException {
        requireId(id);
        CheckpointSession session = sessions.get(id);
        CheckpointSession.VmTransfer t = session == null ? null
                : session.vms.stream().filter(v -> v.source.name().equals(vm)).findFirst().orElse(null);
        if (t != null) {
            if (t.phase != VmPhase.RESUMED) {
                throw AgentException.conflict("checkpoint " + id + " is not complete for VM '" + vm + "' (" + t.phase + "); nothing to save");
            }
            return new AgentStorage.ShadowRef(t.transfer.level0(), t.source.spec(), t.source.accelerator(),
                    t.transfer.level0() instanceof HeldStream held ? held.disk() : t.transfer.cutDisk(),
                    t.streamedTo, where -> t.streamedTo = where);
        }
        PartnerCopy copy = partners.getOrDefault(id, Map.of()).get(vm);
        if (copy != null) {
            if (!"held".equals(copy.state)) {
                throw AgentException.conflict("checkpoint " + id + ": the copy of VM '" + vm + "' on node " + node + " is " + copy.state);
            }
            return new AgentStorage.ShadowRef(new ShadowCopy(copy.qemu), copy.qemu.spec(), copy.qemu.accelerator(), copy.request.diskAtCut(),
                    copy.streamedTo, where -> copy.streamedTo = where);
        }
        throw AgentException.notFound("no checkpoint " + id + " of VM '" + vm + "' in memory on node " + node);
    }

    // ---------------------------------------------------------------- level 0 on a partner node

    /** A copy of another node's shadow, held here so that the checkpoint survives the loss of that node. */
    private static final class PartnerCopy {
        final PartnerShadowRequest request;
        final QemuVm qemu;
        final String uri;
        volatile String state = "loading";
        volatile String error;
        volatile String streamedTo;

        PartnerCopy(PartnerShadowRequest request, QemuVm qemu, String uri) {
            this.request = request;
            this.qemu = qemu;
            this.uri = uri;
        }

        PartnerShadow view() {
            return new PartnerShadow(request.vm(), request.sourceNode(), uri, state, error, streamedTo != null);
        }
    }

    private final Map<String, Map<String, PartnerCopy>> partners = new ConcurrentHashMap<>();

    /**
     * Starts a QEMU here that waits on a TCP port for another node's shadow of {@code vm}, after
     * checking that this node can lend the memory; the copy is held paused once loaded.
     */
    public PartnerShadow hostPartner(String id, PartnerShadowRequest request) throws AgentException, InterruptedException {
        requireId(id);
        if (request.vm() == null || request.spec() == null || request.listenHost() == null) {
            throw AgentException.badRequest("a partner copy needs 'vm', 'spec' and 'listenHost'");
        }
        if (!runtime.partnerCopies()) {
            throw new AgentException(422, "node " + node + " cannot hold a partner copy: on KubeVirt, level 0 is the VM's stream held on"
                    + " its own node; for a copy that survives the node, flush the checkpoint to level 2 (shared storage)");
        }
        Map<String, PartnerCopy> held = partners.computeIfAbsent(id, k -> new ConcurrentHashMap<>());
        if (held.containsKey(request.vm())) {
            throw AgentException.conflict("node " + node + " already holds a copy of VM '" + request.vm() + "' for checkpoint " + id);
        }
        String shortfall = ShadowCheckpointer.memoryShortfall(request.spec().memoryMiB());
        if (shortfall != null) {
            throw new AgentException(507, "node " + node + " cannot hold a copy of VM '" + request.vm() + "': " + shortfall);
        }
        QemuVm qemu;
        String uri;
        try {
            qemu = runtime.startIncoming(request.spec(), io.mekha.agent.runtime.Accelerator.parse(request.accelerator()), request.diskAtCut());
        } catch (VmStartException e) {
            throw new AgentException(500, "node " + node + ": cannot start a QEMU for the copy of VM '" + request.vm() + "': " + e.getMessage(), e);
        }
        try {
            qemu.qmp().execute("migrate-incoming", QmpClient.args().put("uri", "tcp:" + request.listenHost() + ":0"));
            com.fasterxml.jackson.databind.JsonNode addresses = qemu.qmp().execute("query-migrate").path("socket-address");
            String port = addresses.isArray() && addresses.size() > 0 ? addresses.get(0).path("port").asText() : "";
            if (port.isEmpty()) {
                throw AgentException.conflict("this QEMU does not report the port it listens on for incoming state (query-migrate"
                        + " socket-address); partner copies need QEMU 4.0 or newer");
            }
            uri = "tcp:" + request.listenHost() + ":" + port;
        } catch (QmpException e) {
            qemu.kill();
            throw new AgentException(500, "node " + node + ": the QEMU for the copy of VM '" + request.vm() + "' refused: " + e.getMessage(), e);
        } catch (AgentException e) {
            qemu.kill();
            throw e;
        }
        PartnerCopy copy = new PartnerCopy(request, qemu, uri);
        held.put(request.vm(), copy);
        workers.submit(() -> {
            try {
                io.mekha.agent.storage.VmStateStreams.awaitLoaded(qemu, System.nanoTime() + Duration.ofMinutes(10).toNanos());
                copy.state = "held";
                LOG.infof("checkpoint %s: node %s holds a copy of VM '%s' (from node %s)", id, node, request.vm(), request.sourceNode());
            } catch (Exception e) {
                copy.state = "failed";
                copy.error = e.getMessage();
                qemu.kill();
            }
        });
        return copy.view();
    }

    public List<PartnerShadow> partners(String id) throws AgentException {
        requireId(id);
        return partners.getOrDefault(id, Map.of()).values().stream().map(PartnerCopy::view).toList();
    }

    /** Drops every partner copy this node holds for checkpoint {@code id}. */
    public void dropPartners(String id) {
        Map<String, PartnerCopy> held = partners.remove(id);
        if (held != null) {
            held.values().forEach(c -> {
                if (c.qemu.role() == QemuVm.Role.SHADOW) {
                    c.qemu.kill();
                }
            });
        }
    }

    /** Streams this node's shadow of {@code vm} to a partner's waiting QEMU; returns once QEMU reports it sent. */
    public void replicate(String id, ReplicateRequest request) throws AgentException, InterruptedException {
        CheckpointSession session = requireSession(id);
        CheckpointSession.VmTransfer t = session.vms.stream().filter(v -> v.source.name().equals(request.vm())).findFirst()
                .orElseThrow(() -> AgentException.notFound("checkpoint " + id + " has no VM '" + request.vm() + "' on node " + node));
        if (t.phase != VmPhase.RESUMED) {
            throw AgentException.conflict("checkpoint " + id + " is not complete for VM '" + request.vm() + "' (" + t.phase + ")");
        }
        if (t.streamedTo != null) {
            throw AgentException.conflict("the shadow of VM '" + request.vm() + "' was already streamed to " + t.streamedTo
                    + "; QEMU streams a paused VM out only once");
        }
        QemuVm shadow = t.transfer.shadow();
        if (shadow == null) {
            throw new AgentException(422, "checkpoint " + id + ": VM '" + request.vm() + "' is held as a stream on node " + node
                    + " (KubeVirt); partner copies need shadows; flush it to level 2 instead");
        }
        if (!shadow.isAlive() || shadow.role() != QemuVm.Role.SHADOW) {
            throw AgentException.conflict("the shadow of VM '" + request.vm() + "' on node " + node + " is gone");
        }
        synchronized (t) {
            try {
                ShadowTransfer.plainOutgoingMigration(shadow);
                shadow.qmp().execute("migrate", QmpClient.args().put("uri", request.uri()));
                long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
                while (true) {
                    io.mekha.agent.transfer.MigrationStatus status = io.mekha.agent.transfer.MigrationStatus.parse(
                            shadow.qmp().execute("query-migrate", null, Duration.ofMinutes(2)));
                    if (status.completed()) {
                        break;
                    }
                    if (status.failed() || System.nanoTime() > deadline) {
                        throw AgentException.conflict("streaming the shadow of VM '" + request.vm() + "' to " + request.uri() + " "
                                + (status.failed() ? status.status() + ": " + status.errorDescription() : "did not finish in 10 minutes"));
                    }
                    Thread.sleep(20);
                }
                t.streamedTo = "a partner (" + request.uri() + ")";
            } catch (QmpException e) {
                throw new AgentException(500, "streaming the shadow of VM '" + request.vm() + "' to its partner failed: " + e.getMessage(), e);
            }
        }
    }

    public FlushResult flush(String id, FlushRequest request) throws AgentException, InterruptedException {
        requireId(id);
        return storage.flush(id, request);
    }

    public void publishManifest(PublishManifestRequest request) throws AgentException {
        storage.publishManifest(request);
    }

    public CheckpointManifest readManifest(StoredRequest request) throws AgentException {
        return storage.readManifest(request).orElseThrow(() -> AgentException.notFound("no complete checkpoint " + request.checkpoint()
                + " of " + request.virtualCluster() + " at " + request.level() + " on node " + node));
    }

    public List<StoredCheckpoint> listStored(StoredRequest request) throws AgentException {
        return storage.list(request);
    }

    public void deleteStored(StoredRequest request) throws AgentException {
        storage.delete(request);
    }

    public List<StoredVmResult> verifyStored(StoredVmsRequest request) throws AgentException {
        return storage.verify(request);
    }

    public List<StoredVmResult> loadStored(StoredVmsRequest request) throws AgentException, InterruptedException {
        for (String vm : request.vms() == null ? List.<String>of() : request.vms()) {
            String holder = locks.get(vm);
            if (holder != null) {
                throw AgentException.conflict("VM '" + vm + "' is in checkpoint " + holder + "; one checkpoint or restore at a time per VM");
            }
        }
        return storage.load(request);
    }

    public void dropLoaded(String id) {
        storage.dropLoaded(id);
    }

    /** This node's level-1 directory. */
    public java.nio.file.Path level1() {
        return storage.level1();
    }

    // ---------------------------------------------------------------- helpers

    private CheckpointSession requireSession(String id) throws AgentException {
        requireId(id);
        CheckpointSession session = sessions.get(id);
        if (session == null) {
            throw AgentException.notFound("no checkpoint " + id + " on node " + node);
        }
        return session;
    }

    private static void requireId(String id) throws AgentException {
        if (id == null || !ID.matcher(id).matches()) {
            throw AgentException.badRequest("checkpoint id '" + id + "' must be letters, digits, '.', '_' or '-' (at most 63)");
        }
    }

    private static String phases(CheckpointSession session) {
        StringBuilder s = new StringBuilder();
        for (CheckpointSession.VmTransfer t : session.vms) {
            s.append(s.length() == 0 ? "" : ", ").append(t.source.name()).append('=').append(t.phase);
        }
        return s.toString();
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    @Override
    public void close() {
        timers.shutdownNow();
        workers.shutdownNow();
        runtime.close();
        for (SegmentHub hub : hostedSegments.values()) {
            try {
                hub.close();
            } catch (java.io.IOException e) {
                LOG.warnf("closing segment hub %s: %s", hub.name(), e.getMessage());
            }
        }
    }
}
