package io.mekha.agent.api;

import io.mekha.model.TransferFigures;
import io.mekha.model.VmSpec;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import io.mekha.storage.StoredStream;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/** The agent's HTTP API model: requests and replies as JSON records. */
public final class AgentDtos {
    private AgentDtos() {}

    /**
     * The agent's clock, for estimating the offset between it and the coordinator.
     *
     * @param runtime "local" (QEMUs the agent starts) or "kubevirt" (the VMIs on its node)
     */
    public record TimeReply(Instant now, String node, String runtime) {}

    /** A refusal or failure, with what to do about it, and what kind it is. */
    public record ErrorReply(String error, ErrorKind kind) {}

    /** One VM this agent runs. */
    public record VmInfo(String name, String node, String state, long pid, String accelerator, String checkpoint,
                         String consolePath, VmSpec spec) {}

    public record StartVmRequest(VmSpec spec) {}

    /**
     * Prepares a checkpoint of some of this agent's VMs: shadows started, transfers configured,
     * the live stage started (MTD).
     *
     * @param pauseDeadline the agent's watchdog resumes every VM it paused for this checkpoint if
     *     no resume arrives within this time after the stop
     * @param bandwidthLimits bytes/s for a VM's transfer, by VM name (absent: uncapped)
     * @param timePolicy the checkpoint's default time policy for restarts (Virtual, Step, Slew; null: Virtual)
     */
    public record PrepareRequest(List<String> vms, String mode, Duration maxLive, Duration completionTimeout,
                                 Duration pauseDeadline, Map<String, Long> bandwidthLimits, String timePolicy) {}

    /** How long an agent keeps QEMUs loaded or fed for a restart that does not come before it stops them. */
    public static final Duration LOADED_HOLD = Duration.ofMinutes(30);

    /** The launcher pods of VMs the operator is about to act on (KubeVirt), by VM name on the node ({@code <namespace>_<vmi>}). */
    public record PodsRequest(Map<String, io.mekha.model.PodIdentity> pods) {}

    /** Feeds the named VMs' level-0 streams (held in memory) to their waiting QEMUs ahead of a restart; null: every one. */
    public record LoadLevel0Request(List<String> vms) {}

    /**
     * Restart from a checkpoint at {@code at} (the agent's clock): from memory (L0) or from the QEMUs loaded from storage.
     *
     * @param timePolicy null: the checkpoint's default
     * @param slewPeriod how long the Slew policy may take to reach host time (null: 30 s)
     * @param vms the VMs to restart on this node (null: every VM it holds the checkpoint of)
     */
    public record RestartRequest(Instant at, String timePolicy, Duration slewPeriod, StorageLevel level, List<String> vms) {
        public RestartRequest(Instant at, String timePolicy, Duration slewPeriod) {
            this(at, timePolicy, slewPeriod, null, null);
        }
    }

    /** A rendezvous instant, in the agent's own clock. */
    public record AtRequest(Instant at) {}

    public record AbortRequest(String reason) {}

    /**
     * One VM's progress in a checkpoint. Instants are the agent's clock.
     *
     * @param liveRestarts how often the live stage started over because QEMU finished the migration by
     *     itself (pausing the VM) before the global ending condition; the VM was resumed at once each time
     * @param level0Held whether the level-0 copy (a paused shadow, a complete held stream) is still there to restart from
     * @param level0Streamed whether a shadow was already streamed out (to a level or a partner): QEMU does that once
     * @param cutDisk the VM's disk image frozen at the cut (null: no disk, or not captured yet)
     * @param stopLate how long after Ts the guest's clock froze ({@code frozenAt} - Ts): the VM resumes that much after Tr,
     *     so that every VM's pause is Tr - Ts
     * @param frozenAt when the guest's clock froze at the cut (QEMU's run-state trace; else the stop's send): the host time
     *     of the cut that a restart's time policy counts from
     */
    public record VmCheckpointStatus(String vm, VmPhase phase, String liveEnd, int passes, int liveRestarts, long bytesTransferred,
                                     Instant liveDoneAt, Instant stopIssuedAt, Instant capturedAt, Instant resumedAt,
                                     TransferFigures figures, String error, Instant guestClockAtCut, boolean level0Held,
                                     boolean level0Streamed, java.nio.file.Path cutDisk, Duration stopLate, Instant frozenAt) {}

    /**
     * One VM's long transfer on a node, as far as it has got: a flush to a level, a copy between levels, a load for a
     * restore. Instants are the agent's clock.
     *
     * @param purpose what it is for ("flush to L2", "restore from L1")
     * @param activity what it is doing now (saving, verifying, fetching, loading: with the place)
     * @param bytesTotal bytes of the current activity in all, -1 when not known beforehand (a shadow streaming out)
     * @param fraction 0..1 of the current activity done (from the bytes, or QEMU's count of RAM left when the size is
     *     not known); -1 if unknown
     * @param bytesMoved bytes read or written in all its activities so far (for a rate)
     * @param overall 0..1 of the whole transfer (each activity counts the same: a save and its read-back are halves); -1 if unknown
     * @param finishedAt null while it runs
     * @param error why it failed (null: running, or ended well)
     */
    public record TransferProgress(String vm, String node, String purpose, String activity, long bytesDone, long bytesTotal,
                                   double fraction, long bytesMoved, double overall, Instant startedAt, Instant finishedAt,
                                   String error, Instant at) {}

    /**
     * A checkpoint's VMs on one node.
     *
     * @param version moves whenever a VM changes phase: a caller waiting for the next change passes the version it saw
     * @param at the agent's clock when it answered: with the caller's clock offset, how long the answer took to arrive
     */
    public record CheckpointStatus(String id, String node, List<VmCheckpointStatus> vms, long version, Instant at) {}

    /**
     * One VM's restart from a checkpoint's shadow.
     *
     * @param guestClockAtCut the guest's realtime clock at the cut (null without a guest agent)
     * @param hostTimeAtCut the host's time at the cut
     * @param guestClockAfter the guest's realtime clock read just after the restart, at {@code hostTimeAfter}
     * @param timeNote what the time policy did
     */
    public record VmRestartStatus(String vm, RestartState state, Instant resumedAt, Instant resumeEvent, String error,
                                  String timePolicy, Instant guestClockAtCut, Instant hostTimeAtCut, Instant guestClockAfter,
                                  Instant hostTimeAfter, String timeNote) {}

    /** A node's part of a restart: the level its copies came from (null: nothing prepared there) and each VM's state. */
    public record RestartStatus(String id, String node, StorageLevel level, List<VmRestartStatus> vms) {}

    // ---------------------------------------------------------------- stored checkpoints

    /**
     * Saves one VM of a complete checkpoint to a storage level.
     *
     * @param level L1 (this node's own directory; {@code target} ignored) or L2 ({@code target} required)
     * @param from L0 (stream the shadow) or L1 (copy this node's level-1 file, {@code stream} says what it must be)
     * @param writeTimeout the target's timeout for one VM's write (null: 10 minutes)
     * @param disk with {@code from} L1: the level-1 disk image to copy too (null: the VM has no disk)
     */
    public record FlushRequest(String vm, String virtualCluster, StorageLevel level, StorageTarget target, StorageLevel from,
                               String compression, Duration writeTimeout, StoredStream stream, StoredStream disk) {}

    /** One VM's state (and its disk at the cut, if it has one), saved and verified at a level. Instants are the agent's clock. */
    public record FlushResult(String vm, String node, StorageLevel level, String target, StoredStream stream, StoredStream disk,
                              VmSpec spec, String accelerator,
                              Instant startedAt, Instant finishedAt) {}

    /** Names stored checkpoints at a level: one ({@code checkpoint}) or all of a VC (null). */
    public record StoredRequest(StorageLevel level, StorageTarget target, String virtualCluster, String checkpoint) {}

    public record PublishManifestRequest(StorageLevel level, StorageTarget target, CheckpointManifest manifest) {}

    /** Verify or load the named VMs of a stored checkpoint from a level. */
    public record StoredVmsRequest(StorageLevel level, StorageTarget target, CheckpointManifest manifest, List<String> vms) {}

    public record StoredVmResult(String vm, String node, boolean ok, String error) {}

    /** A checkpoint found at a level: complete when its manifest is there and readable. */
    public record StoredCheckpoint(String checkpoint, CheckpointManifest manifest, String problem) {}

    // ---------------------------------------------------------------- level 0 on a partner node

    /**
     * Asks a node to hold a copy of another node's shadow: a QEMU waiting for the state on a TCP port.
     *
     * @param listenHost the address the source node reaches this node at
     * @param stoppedAt the host time of the VM's cut; {@code guestClockAtCut} the guest's clock then (may be null)
     * @param stopLate how long after Ts the VM's guest stopped (null: zero); a restart from the copy resumes it that much after Tr
     * @param diskAtCut the VM's disk image frozen at the cut, which the copy's own overlay is created on (null: no disk).
     *     A path both nodes see: the local mode's nodes share a filesystem; on a cluster disks go through CSI snapshots
     */
    public record PartnerShadowRequest(String vm, String sourceNode, VmSpec spec, String accelerator, String listenHost,
                                       Instant stoppedAt, Instant guestClockAtCut, String timePolicy, java.nio.file.Path diskAtCut,
                                       Duration stopLate, String key) {}

    /**
     * A copy of another node's level 0 held here (or the room kept for one).
     *
     * @param kind a shadow QEMU or a stream (see {@link PartnerKind})
     * @param uri where the source sends the state: a QEMU's {@code tcp:} port (a shadow), this agent's partner listener
     *     ({@code https://host:port}, a stream); null while the room is only kept for a shadow
     * @param reservedMiB the memory kept for it
     * @param bytes what it holds now
     * @param streamed whether it was already streamed out (to a level): a shadow QEMU streams its state out once
     */
    public record PartnerCopyInfo(String vm, String sourceNode, String uri, PartnerCopyState state, String error, boolean streamed,
                                  PartnerKind kind, long reservedMiB, long bytes) {}

    /**
     * Asks a node, before a checkpoint's cut, to keep room for a copy of another node's VM; refused (no room) when the
     * node does not lend that much. The copy must then come from {@code sourceNode}'s agent, with {@code key}.
     *
     * @param memoryMiB the VM's guest RAM (the node adds what its kind of copy needs beyond it)
     * @param key the copy's key (64 hex digits), given to the two nodes only
     * @param listenHost the address the source node reaches this node at
     */
    public record PartnerReservation(String vm, String sourceNode, long memoryMiB, String key, String listenHost) {}

    /**
     * What a node lends for other nodes' level-0 copies.
     *
     * @param lendLimitMiB the most it lends in all (its setting; -1: no limit of its own, only its memory)
     * @param lentMiB taken now by copies held, loading or promised
     * @param roomMiB what more copies could take now: the smaller of what is left to lend and the memory left beside
     *     what is promised
     * @param copyOverheadMiB what one copy takes here beyond the VM's guest RAM (a shadow's QEMU, a stream's room for pages
     *     sent again)
     */
    public record Level0Room(String node, PartnerKind partners, long lendLimitMiB, long lentMiB, long roomMiB, long copyOverheadMiB) {}

    /**
     * Sent ahead of a held stream to its partner (a request header, as JSON): what a restart from the copy needs, and
     * how many bytes follow (the stream, then the pod-only disk at the cut: 0 when there is none).
     */
    public record PartnerStreamHeader(String vm, String sourceNode, VmSpec spec, String accelerator, Instant stoppedAt,
                                      Instant guestClockAtCut, String timePolicy, Duration stopLate, long streamBytes, long diskBytes) {}

    /** The partner's receipt for a held stream: what it wrote, and the SHA-256 over it, for the sender to compare with its own. */
    public record PartnerStreamReceipt(String vm, String node, long bytes, String sha256) {}

    /**
     * Streams a complete checkpoint's level-0 copy of {@code vm} to its partner node: a shadow to the partner's waiting
     * QEMU ({@code uri} {@code tcp:}), a held stream to the partner's agent ({@code uri} {@code https://host:port}, whose
     * certificate must name {@code partnerNode}'s agent).
     *
     * @param key the copy's key (64 hex digits), the one its partner was given: the stream is authenticated and encrypted
     */
    public record ReplicateRequest(String vm, String uri, String key, String partnerNode) {
        public ReplicateRequest(String vm, String uri, String key) {
            this(vm, uri, key, null);
        }
    }

    /** A command to run in a VM's guest (through its guest agent). {@code timeout} null: 60 s. */
    public record ExecRequest(List<String> argv, String stdin, Duration timeout) {}

    /**
     * What a guest command did.
     *
     * @param exitCode null when it was still running at the timeout (it is left running)
     * @param truncated whether the guest agent cut the output short (it keeps at most a few MiB)
     */
    public record ExecResult(List<String> argv, Integer exitCode, String stdout, String stderr, boolean truncated) {
        public boolean succeeded() {
            return exitCode != null && exitCode == 0;
        }
    }
}
