package io.mekha.local;

import io.mekha.agent.AgentException;
import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.ProtocolListener;
import io.mekha.protocol.VmCheckpointReport;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.List;

/**
 * One node in this process: an agent over the local runtime, its HTTP API on loopback with a token
 * of its own, and a coordinator over it. Checkpoints of one VM here run the VC protocol (prepare,
 * live stage, Ts, barrier, Tr) through the same code as a VC's, over the same wire.
 */
public final class EmbeddedNode implements AutoCloseable {
    private final AgentService agent;
    private final AgentHttpServer server;
    private final Coordinator coordinator;

    private EmbeddedNode(AgentService agent, AgentHttpServer server, Coordinator coordinator) {
        this.agent = agent;
        this.server = server;
        this.coordinator = coordinator;
    }

    public static EmbeddedNode start(RuntimeConfig config) throws IOException {
        AgentService agent = new AgentService("local", new LocalVmRuntime(config), new RendezvousClock(Clock.systemUTC()));
        BearerToken token = BearerToken.random();
        AgentHttpServer server;
        try {
            server = new AgentHttpServer(agent, token, new InetSocketAddress("127.0.0.1", 0)).start();
        } catch (IOException | RuntimeException e) {
            agent.close();
            throw e;
        }
        AgentClient client = new AgentClient("local", server.uri(), token.header(), Duration.ofSeconds(30));
        return new EmbeddedNode(agent, server, new Coordinator(List.of(client), Clock.systemUTC()));
    }

    public AgentService agent() {
        return agent;
    }

    public Coordinator coordinator() {
        return coordinator;
    }

    /** Starts a VM and waits for its guest to boot; returns its QEMU. */
    public QemuVm startVm(VmSpec spec) throws AgentException, InterruptedException {
        agent.startVm(spec);
        return agent.qemu(spec.name());
    }

    /** The QEMU that is VM {@code name} now (after a restart, the restored one). */
    public QemuVm vm(String name) throws AgentException {
        return agent.qemu(name);
    }

    /** Checkpoints one VM into its level-0 copy in {@code mode}; the VM runs on. */
    public VmCheckpointReport checkpoint(String id, String vm, TransferMode mode, Duration maxLive, ProtocolListener listener)
            throws CheckpointFailedException, InterruptedException {
        CheckpointOptions options = CheckpointOptions.defaults().withMode(mode).withLiveBounds(maxLive, maxLive.plusSeconds(15));
        return coordinator.checkpoint(id, List.of(vm), options, listener).vms().get(0);
    }

    /** Restarts every VM of checkpoint {@code id} from its level-0 copy (the VM's current QEMU, crashed or not, is killed). */
    public void restart(String id, ProtocolListener listener) throws CheckpointFailedException, InterruptedException {
        coordinator.restart(id, listener);
    }

    /** Drops checkpoint {@code id}'s level-0 copies. */
    public void discard(String id) {
        coordinator.discard(id);
    }

    @Override
    public void close() {
        coordinator.close();
        server.close();
        agent.close();
    }
}
