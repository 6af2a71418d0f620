package io.mekha.kubevirt;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.kubevirt.KubeVirtVmRuntime;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.server.AgentAuthenticator;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.Coordinator;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;

/**
 * A KubeVirt node's agent in this JVM: the KubeVirt runtime over this machine's real /proc, level 0
 * in {@code work/level0}, served over authenticated HTTP (or mutual TLS); and a coordinator and storage that reach it
 * that way.
 */
public final class KubeVirtNode implements AutoCloseable {
    public final AgentService agent;
    public final AgentHttpServer server;
    public final AgentClient client;
    public final Coordinator coordinator;
    public final CheckpointStorage storage;
    /** Where other nodes' agents hand in level-0 copies (with the agents' mutual TLS only; null without it). */
    public final io.mekha.agent.server.PartnerStreamServer partners;
    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    /** With a shared bearer token (the local mode's way). */
    public KubeVirtNode(Path work) throws Exception {
        this(work, BearerToken.random(), null);
    }

    /** Checking callers with {@code auth}; the coordinator sends {@code header} (null: the token's own). */
    public KubeVirtNode(Path work, AgentAuthenticator auth, String header) throws Exception {
        this(work, auth, header, new InetSocketAddress("127.0.0.1", 0), null, null);
    }

    /**
     * Serving at {@code listen}, over mutual TLS when {@code serverTls} is given (the coordinator then calls with
     * {@code clientTls}, the operator's side).
     */
    public KubeVirtNode(Path work, AgentAuthenticator auth, String header, InetSocketAddress listen, javax.net.ssl.SSLContext serverTls,
                        javax.net.ssl.SSLSocketFactory clientTls) throws Exception {
        agent = new AgentService("n1", new KubeVirtVmRuntime(RuntimeConfig.defaults(Files.createDirectories(work.resolve("agent"))),
                Path.of("/proc"), work.resolve("level0"), Duration.ofSeconds(90)), new RendezvousClock(Clock.systemUTC()));
        server = new AgentHttpServer(agent, auth, listen, serverTls).start();
        partners = null;
        client = new AgentClient("n1", server.uri(), header != null ? header : ((BearerToken) auth).header(), Duration.ofSeconds(30), clientTls);
        coordinator = new Coordinator(List.of(client), Clock.systemUTC());
        storage = new CheckpointStorage(List.of(client), Clock.systemUTC());
    }

    /**
     * Node {@code node}'s agent as the DaemonSet runs it, in {@code work/<node>}: serving at {@code listen} over mutual TLS
     * with {@code certificate} (the operator signed it), with a partner listener where other nodes' agents hand in level-0
     * copies, and sending this node's copies the same way. It drives only the launchers {@code onThisNode} says are
     * this node's: on one machine every node's pods share the process table.
     */
    public KubeVirtNode(Path work, String node, AgentAuthenticator auth, String header, InetSocketAddress listen,
                        io.mekha.agent.server.AgentCertificate certificate, javax.net.ssl.SSLSocketFactory clientTls,
                        java.util.function.Predicate<io.mekha.agent.kubevirt.LauncherQemu> onThisNode) throws Exception {
        Path dir = Files.createDirectories(work.resolve(node));
        agent = new AgentService(node, new KubeVirtVmRuntime(RuntimeConfig.defaults(Files.createDirectories(dir.resolve("agent"))),
                Path.of("/proc"), dir.resolve("level0"), Duration.ofSeconds(90), onThisNode), new RendezvousClock(Clock.systemUTC()),
                dir.resolve("level1"));
        agent.sendingCopiesWith(certificate::partnerClient);
        server = new AgentHttpServer(agent, auth, listen, certificate.sslContext()).start();
        partners = new io.mekha.agent.server.PartnerStreamServer(agent, new InetSocketAddress(listen.getHostString(), 0),
                certificate.partnerServerContext()).start();
        client = new AgentClient(node, server.uri(), header, Duration.ofSeconds(30), clientTls);
        coordinator = new Coordinator(List.of(client), Clock.systemUTC());
        storage = new CheckpointStorage(List.of(client), Clock.systemUTC());
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return; // a test that plays a lost node closes it early
        }
        storage.close();
        coordinator.close();
        server.close();
        if (partners != null) {
            partners.close();
        }
        agent.close();
    }
}
