package io.mekha.protocol;

import io.mekha.model.TimePolicy;
import io.mekha.storage.StorageLevel;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * Runs the coordinated checkpoint and restart protocols over a set of agents; knows nothing of
 * Kubernetes. The checkpoint ({@link CheckpointProtocol}): lock and prepare every VM, live stage,
 * global ending condition, suspend at Ts, barrier, resume at Tr. The restart ({@link RestartProtocol}):
 * every VM resumed together from its loaded copy. Rendezvous instants come from {@link Rendezvous}.
 */
public final class Coordinator implements AutoCloseable {
    private final List<AgentClient> agents;
    private final AgentCalls calls = new AgentCalls("coordinator-call");
    private final CheckpointProtocol checkpoints;
    private final RestartProtocol restarts;
    private final Level0Placement placement;

    public Coordinator(List<AgentClient> agents, Clock clock) {
        this.agents = List.copyOf(agents);
        Rendezvous rendezvous = new Rendezvous(clock, calls);
        Aborts aborts = new Aborts(calls);
        this.placement = new Level0Placement(this.agents, calls);
        this.checkpoints = new CheckpointProtocol(this.agents, clock, calls, rendezvous, aborts);
        this.restarts = new RestartProtocol(clock, calls, rendezvous, placement);
    }

    public CheckpointReport checkpoint(String id, List<String> vmNames, CheckpointOptions options, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        return checkpoints.checkpoint(id, vmNames, options, listener);
    }

    /**
     * Picks up checkpoint {@code id} after the coordinator that started it went away: finished when every VM is
     * captured (resumed at a new Tr) or resumed, else aborted on every agent.
     *
     * @param ts the cut instant recorded before the coordinator went away, if it was
     */
    public CheckpointReport adopt(String id, List<String> vmNames, CheckpointOptions options, Instant ts, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        return checkpoints.adopt(id, vmNames, options, ts, listener);
    }

    /** Restarts every VM of checkpoint {@code id} from memory with the checkpoint's time policy. */
    public RestartReport restart(String id, ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        return restart(id, null, null, listener);
    }

    /**
     * Restarts every VM of checkpoint {@code id} from memory, all resumed together at a rendezvous
     * instant, then applies {@code policy} to their clocks (null: the checkpoint's own).
     */
    public RestartReport restart(String id, TimePolicy policy, Duration slewPeriod, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        return restarts.fromMemory(id, policy, slewPeriod, listener);
    }

    /** Restarts a checkpoint's VMs that {@code holders} have loaded from {@code level} (paused, waiting), resumed together. */
    public RestartReport restartLoaded(String id, List<AgentClient> holders, StorageLevel level, TimePolicy policy, Duration slewPeriod,
                                       ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        return restarts.loaded(id, holders, level, policy, slewPeriod, listener);
    }

    /** Which node restarts each VM from memory (its own node's copy, else a partner's). */
    Map<String, AgentClient> level0Placement(String id) throws CheckpointFailedException {
        return placement.place(id);
    }

    /** Drops a checkpoint's level-0 copies on every agent that holds it. */
    public void discard(String id) {
        calls.parallel(agents, agent -> {
            agent.discard(id);
            return Boolean.TRUE;
        });
    }

    @Override
    public void close() {
        calls.close();
    }
}
