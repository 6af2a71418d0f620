package io.mekha.protocol;

import io.mekha.model.TimePolicy;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * A VC's checkpoints beyond memory, as one facade over its rooms: the flush to L1 and L2 with
 * bounded writers per target ({@link Flusher}, decisions in {@link FlushSchedule}), level 0 on
 * partner nodes ({@link PartnerReplication}), the restart from the fastest level holding a complete,
 * verified copy ({@link RestoreFallback}), and retention ({@link Retention}).
 */
public final class CheckpointStorage implements AutoCloseable {
    private final AgentCalls calls = new AgentCalls("storage-call");
    private final Level0Release level0;
    private final Flusher flusher;
    private final PartnerReplication partners;
    private final RestoreFallback restores;
    private final Retention retention;
    private final List<AgentClient> agents;

    public CheckpointStorage(List<AgentClient> agents, Clock clock) {
        List<AgentClient> all = List.copyOf(agents);
        this.agents = all;
        Level0Placement placement = new Level0Placement(all, calls);
        Rendezvous rendezvous = new Rendezvous(clock, calls);
        this.level0 = new Level0Release(all, calls);
        this.flusher = new Flusher(all, clock, calls, level0);
        this.partners = new PartnerReplication(all, clock, calls);
        this.restores = new RestoreFallback(all, calls, placement, new RestartProtocol(clock, calls, rendezvous, placement));
        this.retention = new Retention(all, calls, placement, level0);
    }

    /** The manifest of a just-taken checkpoint, before any level holds it. */
    public static CheckpointManifest draft(String vc, CheckpointReport report, CheckpointOptions options, Instant now) {
        List<CheckpointManifest.VmEntry> vms = report.vms().stream()
                .map(v -> new CheckpointManifest.VmEntry(v.vm(), v.node(), null, null, v.cutAt(),
                        v.guestClockAtCut(), null, null))
                .toList();
        return new CheckpointManifest(CheckpointManifest.FORMAT, vc, report.id(), StorageLevel.L0, "memory", now, report.suspendAt(),
                options.mode().displayName(), options.timePolicy() == null ? TimePolicy.VIRTUAL.displayName() : options.timePolicy().displayName(),
                vms, List.of(StorageLevel.L0));
    }

    /**
     * Writes every VM of a complete checkpoint to the plan's levels. Writes to one target are
     * bounded ({@code level1WritersPerNode} per node's disk, {@code level2Writers} for the shared
     * target) and started in the plan's order; a level's manifest is published once every VM's
     * stream there is written and verified. A failed write leaves that level unpublished (nothing
     * partial is visible) and the level-0 copies in place.
     *
     * @param sizes each VM's expected state size (bytes), for ordering; absent: equal
     */
    public FlushReport flush(CheckpointManifest draft, Map<String, Long> sizes, FlushPlan plan, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        return flusher.flush(draft, sizes, plan, listener);
    }

    /** Drops a checkpoint's level-0 copies, and the partner copies of them, on every agent. */
    public void releaseLevel0(String checkpoint) {
        level0.release(checkpoint);
    }

    /**
     * Where each VM's partner copy went.
     *
     * @param partners VM to the node that now also holds it in memory
     */
    public record PartnerReport(String checkpoint, Map<String, String> partners, Duration took) {}

    /**
     * Copies every VM's shadow of a complete checkpoint into the memory of another node (the next
     * node in the agent list, round robin), so that losing any one node leaves a copy of every VM.
     * Needs two nodes or more; each partner checks that it can lend the memory before it accepts.
     */
    public PartnerReport replicateLevel0(String checkpoint, ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        return partners.replicate(checkpoint, null, listener);
    }

    /** Room kept on partner nodes before a checkpoint's cut, with the copies' keys (which stay in this process). */
    public static final class PartnerRooms {
        private final Map<String, PartnerReplication.Reserved> rooms;

        PartnerRooms(Map<String, PartnerReplication.Reserved> rooms) {
            this.rooms = Map.copyOf(rooms);
        }

        /** VM to the node that keeps room for its copy. */
        public Map<String, String> partners() {
            Map<String, String> nodes = new java.util.TreeMap<>();
            rooms.forEach((vm, r) -> nodes.put(vm, r.partner().node()));
            return nodes;
        }
    }

    /**
     * Keeps room on partner nodes for a copy of each VM of {@code nodeByVm} (VM to its node), before the checkpoint's cut,
     * bounded by what each node lends and never on the VM's own node: refused, with no room kept, when it does not fit.
     */
    public PartnerRooms reservePartners(String checkpoint, Map<String, String> nodeByVm) throws CheckpointFailedException {
        return new PartnerRooms(partners.reserve(checkpoint, nodeByVm));
    }

    /** {@link #replicateLevel0(String, ProtocolListener)} into the room kept before the cut. */
    public PartnerReport replicateLevel0(String checkpoint, PartnerRooms rooms, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        return partners.replicate(checkpoint, rooms == null ? null : rooms.rooms, listener);
    }

    /**
     * Level-0 copies made again after a node's loss.
     *
     * @param copies VM to the node that now also holds it in memory
     * @param failures VM to why no second copy of it could be made
     */
    public record Remade(String checkpoint, Map<String, String> copies, Map<String, String> failures) {}

    /**
     * Makes a second in-memory copy of each VM of {@code holderByVm} (VM to the one node that still holds it, after
     * another node's loss) on a further node that lends room for it, handed on from that node over the agents' mutual
     * TLS. Nothing held already is let go.
     */
    public Remade remakePartnerCopies(String checkpoint, Map<String, String> holderByVm) throws InterruptedException {
        return partners.remake(checkpoint, holderByVm);
    }

    /** Drops every partner copy of a checkpoint, and the room kept for them, on every agent: the VMs' own copies stay. */
    public void dropPartnerCopies(String checkpoint) {
        partners.drop(checkpoint, agents);
    }

    /**
     * Drops the VMs' own level-0 copies of a checkpoint on {@code nodes} (level 0 then lives on the partners only): frees
     * the memory of the VMs' nodes once another node holds each VM.
     */
    public void releaseOwnLevel0(String checkpoint, java.util.Collection<String> nodes) {
        calls.parallel(agents.stream().filter(a -> nodes.contains(a.node())).toList(), agent -> {
            agent.discard(checkpoint);
            return Boolean.TRUE;
        });
    }

    /**
     * A restart from storage: which level it used and why faster ones were passed over.
     *
     * @param skipped each faster level tried, with why it could not serve
     */
    public record RestoreReport(StorageLevel level, Map<StorageLevel, String> skipped, RestartReport restart) {}

    /**
     * Told which node restarts each VM, once a level has been chosen and before anything is loaded: on KubeVirt the
     * operator recreates each VM's instance on that node then, with the hook's restore annotation.
     */
    @FunctionalInterface
    public interface Placed {
        void at(StorageLevel level, Map<String, String> nodeByVm) throws CheckpointFailedException, InterruptedException;
    }

    /**
     * Restarts a VC from the fastest level (from {@code preferred} on) that holds checkpoint
     * {@code checkpoint} whole and verified, falling back level by level. Every stream is read and
     * checked against its manifest before any VM is started.
     */
    public RestoreReport restore(String vc, String checkpoint, StorageLevel preferred, StorageTarget level2, TimePolicy policy,
                                 Duration slewPeriod, ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        return restore(vc, checkpoint, preferred, level2, policy, slewPeriod, listener, (level, nodes) -> { });
    }

    /** {@link #restore(String, String, StorageLevel, StorageTarget, TimePolicy, Duration, ProtocolListener)}, telling {@code placed} where each VM restarts. */
    public RestoreReport restore(String vc, String checkpoint, StorageLevel preferred, StorageTarget level2, TimePolicy policy,
                                 Duration slewPeriod, ProtocolListener listener, Placed placed)
            throws CheckpointFailedException, InterruptedException {
        return restores.restore(vc, checkpoint, preferred, level2, policy, slewPeriod, listener, placed);
    }

    /** Where a checkpoint is held whole. */
    public record Holdings(String checkpoint, Instant createdAt, List<StorageLevel> complete) {}

    /**
     * Every checkpoint of {@code vc} found at L1 or L2, plus {@code known} (checkpoints the caller took, with
     * when: those only in memory have no manifest to say), with the levels holding each whole, oldest first.
     */
    public List<Holdings> holdings(String vc, StorageTarget level2, Map<String, Instant> known) {
        return retention.holdings(vc, level2, known);
    }

    /** Removes a checkpoint from one level; refuses to remove the last complete copy unless {@code force}. */
    public void release(String vc, String checkpoint, StorageLevel level, StorageTarget level2, boolean force)
            throws CheckpointFailedException {
        retention.release(vc, checkpoint, level, level2, force);
    }

    /** Deletes a checkpoint at every level. */
    public void delete(String vc, String checkpoint, StorageTarget level2) throws CheckpointFailedException {
        retention.delete(vc, checkpoint, level2);
    }

    /** Keeps the newest {@code keep} checkpoints of {@code vc} (by creation time) and deletes the rest everywhere. */
    public List<String> keepNewest(String vc, int keep, StorageTarget level2, Map<String, Instant> known) throws CheckpointFailedException {
        return retention.keepNewest(vc, keep, level2, known);
    }

    @Override
    public void close() {
        calls.close();
    }
}
