package io.mekha.testing;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.Coordinator;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;

/** One node agent in this JVM, served over authenticated HTTP, and a coordinator that reaches it that way. */
public final class SingleAgent implements AutoCloseable {
    public final LocalVmRuntime runtime;
    public final AgentService agent;
    public final Coordinator coordinator;
    public final AgentClient client;
    private final AgentHttpServer server;

    public SingleAgent(Path work) throws Exception {
        BearerToken token = BearerToken.random();
        runtime = new LocalVmRuntime(RuntimeConfig.defaults(work));
        agent = new AgentService("n1", runtime, new RendezvousClock(Clock.systemUTC()));
        server = new AgentHttpServer(agent, token, new InetSocketAddress("127.0.0.1", 0)).start();
        client = new AgentClient("n1", server.uri(), token.header(), Duration.ofSeconds(30));
        coordinator = new Coordinator(List.of(client), Clock.systemUTC());
    }

    @Override
    public void close() {
        coordinator.close();
        server.close();
        agent.close();
    }
}
