package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequest;
import io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.api.ErrorKind;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.server.AgentCertificate;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.TokenReviewAuthenticator;
import io.mekha.model.AgentAudience;
import io.mekha.operator.service.AgentCertificates;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import io.mekha.tls.CertificateAuthority;
import io.mekha.tls.KeyPairs;
import io.mekha.tls.Pem;
import io.mekha.tls.PeerTrust;
import io.mekha.tls.RenewableIdentity;
import io.mekha.tls.TlsContexts;
import io.mekha.tls.TlsNames;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent API's mutual TLS, with the mock API server standing in for Kubernetes (and recording, as the API server
 * does, who made each CertificateSigningRequest from the token it came with): an agent gets its serving certificate
 * from the operator through a CertificateSigningRequest, the operator calls it with its client certificate, and
 * nothing else gets through: not plain HTTP, not a caller without the operator's certificate or with another CA's,
 * not an agent's own certificate used as a caller's. The operator sends no token to a server that cannot show the
 * certificate of the node it meant to call (a pod that took over an agent's IP, another node's agent). It signs a
 * request only from an agent pod for its own node.
 */
@Tag("fast")
@Tag("security")
class AgentTlsTest {
    static final String NS = MockKubernetes.AGENT_NAMESPACE;
    static final Map<String, String> AGENT_LABELS = Map.of("app.kubernetes.io/name", "mekha-agent");

    @TempDir
    Path work;
    MockKubernetes kube;
    AgentCertificates operator;
    /** Each agent's certificate, as it obtained it. */
    final Map<String, AgentCertificate> certificates = new java.util.HashMap<>();

    @BeforeEach
    void start() throws Exception {
        kube = new MockKubernetes();
        operator = new AgentCertificates(kube.client, NS, "mekha-agent", AGENT_LABELS, Clock.systemUTC()).start();
    }

    @AfterEach
    void stop() {
        operator.close();
        kube.close();
    }

    /** An agent on {@code node} as the DaemonSet runs it: its pod first, then its certificate, then it serves on the pod's port. */
    private AgentHttpServer agent(String node, AgentService service) throws Exception {
        int port;
        try (ServerSocket free = new ServerSocket(0)) {
            port = free.getLocalPort();
        }
        kube.agentPod(node, URI.create("https://127.0.0.1:" + port));
        KubernetesClient asAgent = kube.clientAs("agent-token-" + node, kube.agentPodIdentity(node));
        AgentCertificate certificate = AgentCertificate.obtain(asAgent, NS, node, Clock.systemUTC(), Duration.ofSeconds(30));
        certificates.put(node, certificate);
        SSLContext tls = certificate.sslContext();
        var auth = new TokenReviewAuthenticator(kube.server.createClient(), Set.of(MockKubernetes.OPERATOR_USER), List.of(AgentAudience.of(node)),
                Clock.systemUTC());
        return new AgentHttpServer(service, auth, new InetSocketAddress("127.0.0.1", port), tls).start();
    }

    private AgentService service(String node) throws Exception {
        return new AgentService(node, new LocalVmRuntime(RuntimeConfig.defaults(work.resolve(node))), new RendezvousClock(Clock.systemUTC()),
                work.resolve(node).resolve("level1"));
    }

    private static String token(String node) {
        return "Bearer " + MockKubernetes.operatorToken(node);
    }

    @Test
    void anAgentServesWithTheCertificateTheOperatorSignedAndTakesCallsOnlyFromTheOperator() throws Exception {
        try (AgentService service = service("n1"); AgentHttpServer server = agent("n1", service)) {
            assertThat(server.uri().getScheme()).isEqualTo("https");
            CertificateSigningRequest csr = kube.client.certificates().v1().certificateSigningRequests().list().getItems().get(0);
            assertThat(csr.getSpec().getSignerName()).isEqualTo("mekha.io/agent");
            assertThat(csr.getStatus().getConditions()).anySatisfy(c -> assertThat(c.getType()).isEqualTo("Approved"));
            X509Certificate issued = Pem.certificates(new String(Base64.getDecoder().decode(csr.getStatus().getCertificate()), StandardCharsets.US_ASCII)).get(0);
            assertThat(TlsNames.commonName(issued)).isEqualTo("mekha-agent:n1");
            // serverAuth, and clientAuth for handing a level-0 copy to a partner node's agent (never the operator's API: below)
            assertThat(issued.getExtendedKeyUsage()).containsExactlyInAnyOrder("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2");
            assertThat(issued.getBasicConstraints()).isEqualTo(-1);

            // the operator, as its AgentDirectory calls: its client certificate, its token for n1, trust in n1's agent alone
            AgentClient asOperator = new AgentClient("n1", server.uri(), token("n1"), Duration.ofSeconds(10), operator.forNode("n1"));
            assertThat(asOperator.time().node()).isEqualTo("n1");

            // plain HTTP to the agent's port gets no answer
            URI plain = URI.create("http://127.0.0.1:" + server.uri().getPort());
            assertUnreachable(new AgentClient("n1", plain, token("n1"), Duration.ofSeconds(5)));
            // the operator's token without its certificate: refused, and the refusal says what is missing
            SSLSocketFactory noCertificate = clientTls(null, operator.caCertificate(), "n1");
            assertRefused(new AgentClient("n1", server.uri(), token("n1"), Duration.ofSeconds(5), noCertificate), 401,
                    "needs the operator's client certificate");
            // a client certificate from another CA, even one that calls itself the operator: the handshake fails
            CertificateAuthority other = CertificateAuthority.create("mekha-agent-ca", Clock.systemUTC());
            assertUnreachable(new AgentClient("n1", server.uri(), token("n1"), Duration.ofSeconds(5),
                    clientTls(identity(other, TlsNames.OPERATOR, CertificateAuthority.Purpose.CLIENT), operator.caCertificate(), "n1")));
            // the right CA, but an agent's name: an agent's key (a node's, say a compromised one) does not make a caller
            CertificateAuthority ca = storedCa();
            assertUnreachable(new AgentClient("n1", server.uri(), token("n1"), Duration.ofSeconds(5),
                    clientTls(identity(ca, TlsNames.agent("n2"), CertificateAuthority.Purpose.CLIENT), operator.caCertificate(), "n1")));
            assertThat(server.requestsAnswered()).as("requests that reached the agent's handler: the operator's and the one refused").isEqualTo(2);
        }
    }

    @Test
    void theOperatorSendsNothingToAServerThatCannotShowTheCertificateOfTheNodeItCalls() throws Exception {
        try (AgentService n1 = service("n1"); AgentHttpServer agent1 = agent("n1", n1)) {
            // a pod that took over n2's agent address, and here it is n1's real agent: the client meant for n2 hangs up
            AgentClient forN2 = new AgentClient("n2", agent1.uri(), token("n2"), Duration.ofSeconds(5), operator.forNode("n2"));
            assertUnreachable(forN2);
            assertThat(agent1.requestsAnswered()).as("no request, and no token for n2, reached n1's agent").isZero();

            // an impostor with a certificate that names n1's agent, from a CA of its own
            CertificateAuthority own = CertificateAuthority.create("mekha-agent-ca", Clock.systemUTC());
            RenewableIdentity fake = identity(own, TlsNames.agent("n1"), CertificateAuthority.Purpose.SERVER);
            AtomicInteger seen = new AtomicInteger();
            var impostor = com.sun.net.httpserver.HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 8);
            impostor.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(TlsContexts.of(fake, PeerTrust.operator(own.certificate()))));
            impostor.createContext("/", exchange -> {
                seen.incrementAndGet();
                exchange.sendResponseHeaders(500, -1);
                exchange.close();
            });
            impostor.start();
            try {
                URI at = URI.create("https://127.0.0.1:" + impostor.getAddress().getPort());
                assertUnreachable(new AgentClient("n1", at, token("n1"), Duration.ofSeconds(5), operator.forNode("n1")));
                assertThat(seen.get()).as("requests the impostor read").isZero();
            } finally {
                impostor.stop(0);
            }
        }
    }

    /**
     * The partner listener, where another node's agent hands in a level-0 copy: only an agent's certificate from the
     * operator's CA gets through the handshake (not the operator's, not another CA's, not none), and then only the agent
     * of the node the room was kept for, with the copy's key, for a copy that says what it is. The one that does is held
     * whole, its receipt the SHA-256 of what was sent.
     */
    @Test
    void aPartnerCopyIsTakenOnlyFromTheAgentItsRoomWasKeptForWithItsKey() throws Exception {
        AgentService n1 = new AgentService("n1", new io.mekha.agent.kubevirt.KubeVirtVmRuntime(RuntimeConfig.defaults(work.resolve("n1")),
                Path.of("/proc"), work.resolve("n1").resolve("level0")), new RendezvousClock(Clock.systemUTC()), work.resolve("n1").resolve("level1"));
        try (n1; AgentHttpServer api = agent("n1", n1);
             io.mekha.agent.server.PartnerStreamServer listener = new io.mekha.agent.server.PartnerStreamServer(n1,
                     new InetSocketAddress("127.0.0.1", 0), certificates.get("n1").partnerServerContext()).start()) {
            AgentClient asOperator = new AgentClient("n1", api.uri(), token("n1"), Duration.ofSeconds(10), operator.forNode("n1"));
            String id = "hpc.cp1.0a1b2c3d";
            String vm = "hpc_vm2";
            String key = io.mekha.model.StreamKey.random();
            var room = asOperator.reservePartner(id, new io.mekha.agent.api.AgentDtos.PartnerReservation(vm, "n2", 256, key, "127.0.0.1"));
            assertThat(room.state()).isEqualTo(io.mekha.agent.api.PartnerCopyState.RESERVED);
            assertThat(room.uri()).isEqualTo("https://127.0.0.1:" + listener.port());
            assertThat(asOperator.level0Room().lentMiB()).as("room kept: the VM's RAM and a stream's slack").isEqualTo(256 + 64);
            byte[] state = new byte[300_000];
            new java.util.Random(7).nextBytes(state);
            var header = new io.mekha.agent.api.AgentDtos.PartnerStreamHeader(vm, "n2", io.mekha.model.VmSpec.named(vm).memoryMiB(256).build(),
                    "TCG", java.time.Instant.now(), null, "VIRTUAL", Duration.ZERO, state.length, 0);
            URI at = URI.create(room.uri());
            CertificateAuthority ca = storedCa();

            // handshakes that end before any byte: no certificate, the operator's, another CA's naming agent n2
            assertThat(put(clientTls(null, operator.caCertificate(), "n1"), at, id, vm, key, header, state).status()).isEqualTo(-1);
            assertThat(put(clientTls(identity(ca, TlsNames.OPERATOR, CertificateAuthority.Purpose.CLIENT), operator.caCertificate(), "n1"),
                    at, id, vm, key, header, state).status()).isEqualTo(-1);
            CertificateAuthority other = CertificateAuthority.create("mekha-agent-ca", Clock.systemUTC());
            assertThat(put(clientTls(identity(other, TlsNames.agent("n2"), CertificateAuthority.Purpose.AGENT), operator.caCertificate(), "n1"),
                    at, id, vm, key, header, state).status()).isEqualTo(-1);

            SSLSocketFactory asN2 = clientTls(identity(ca, TlsNames.agent("n2"), CertificateAuthority.Purpose.AGENT), operator.caCertificate(), "n1");
            SSLSocketFactory asN3 = clientTls(identity(ca, TlsNames.agent("n3"), CertificateAuthority.Purpose.AGENT), operator.caCertificate(), "n1");
            // a genuine agent, of the wrong node, even with the key
            Sent wrongNode = refused(asN3, at, id, vm, key, header);
            assertThat(wrongNode.status()).isEqualTo(403);
            assertThat(wrongNode.body()).contains("comes from node n2 only");
            // the right node's agent without the copy's key
            Sent wrongKey = refused(asN2, at, id, vm, io.mekha.model.StreamKey.random(), header);
            assertThat(wrongKey.status()).isEqualTo(403);
            assertThat(wrongKey.body()).contains("without its key");
            // a copy of another VM than its room's, and no room at all for another checkpoint
            assertThat(refused(asN2, at, id, vm, key, new io.mekha.agent.api.AgentDtos.PartnerStreamHeader("hpc_vm3", "n2", header.spec(), "TCG",
                    header.stoppedAt(), null, "VIRTUAL", Duration.ZERO, state.length, 0)).status()).isEqualTo(400);
            assertThat(refused(asN2, at, "hpc.cp2.0a1b2c3d", vm, key, header).status()).isEqualTo(404);
            assertThat(asOperator.partners(id)).singleElement().satisfies(c -> {
                assertThat(c.state()).as("nothing taken from any of them").isEqualTo(io.mekha.agent.api.PartnerCopyState.RESERVED);
                assertThat(c.bytes()).isZero();
            });

            // the stream, then the VM's pod-only disk at the cut, in one body
            byte[] disk = new byte[50_000];
            new java.util.Random(8).nextBytes(disk);
            byte[] body = java.nio.ByteBuffer.allocate(state.length + disk.length).put(state).put(disk).array();
            var withDisk = new io.mekha.agent.api.AgentDtos.PartnerStreamHeader(vm, "n2", header.spec(), "TCG", header.stoppedAt(), null, "VIRTUAL",
                    Duration.ZERO, state.length, disk.length);
            Sent taken = put(asN2, at, id, vm, key, withDisk, body);
            assertThat(taken.status()).as(taken.body()).isEqualTo(200);
            assertThat(taken.body()).contains(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(body)));
            assertThat(asOperator.partners(id)).singleElement().satisfies(c -> {
                assertThat(c.state()).isEqualTo(io.mekha.agent.api.PartnerCopyState.HELD);
                assertThat(c.kind()).isEqualTo(io.mekha.agent.api.PartnerKind.STREAM);
                assertThat(c.sourceNode()).isEqualTo("n2");
                assertThat(c.bytes()).as("the stream and the disk").isEqualTo(body.length);
            });
            Path held = work.resolve("n1").resolve("level0").resolve("partners").resolve(id);
            assertThat(Files.readAllBytes(held.resolve(vm + ".stream"))).isEqualTo(state);
            assertThat(Files.readAllBytes(held.resolve(vm + ".disk.qcow2"))).isEqualTo(disk);
            assertThat(refused(asN2, at, id, vm, key, header).status()).as("a copy is taken once").isEqualTo(409);
            // the agent's own API still takes nothing from an agent's certificate
            assertUnreachable(new AgentClient("n1", api.uri(), token("n1"), Duration.ofSeconds(5), asN2));
            // letting go of one VM's room leaves the copy held for another
            asOperator.reservePartner(id, new io.mekha.agent.api.AgentDtos.PartnerReservation("hpc_vm3", "n2", 256, io.mekha.model.StreamKey.random(),
                    "127.0.0.1"));
            asOperator.dropPartner(id, "hpc_vm3");
            assertThat(asOperator.partners(id)).singleElement().satisfies(c -> {
                assertThat(c.vm()).isEqualTo(vm);
                assertThat(c.state()).isEqualTo(io.mekha.agent.api.PartnerCopyState.HELD);
            });
            asOperator.dropPartners(id);
            assertThat(asOperator.partners(id)).isEmpty();
            assertThat(asOperator.level0Room().lentMiB()).isZero();
        }
    }

    @Test
    void anAgentWithoutTheAgentsMutualTlsKeepsNoRoomForAnotherNodesStream() throws Exception {
        try (AgentService plain = new AgentService("n1", new io.mekha.agent.kubevirt.KubeVirtVmRuntime(RuntimeConfig.defaults(work.resolve("n1")),
                Path.of("/proc"), work.resolve("n1").resolve("level0")), new RendezvousClock(Clock.systemUTC()), work.resolve("n1").resolve("level1"))) {
            assertThat(plain.level0Room().partners()).isEqualTo(io.mekha.agent.api.PartnerKind.NONE);
            assertThatThrownBy(() -> plain.reservePartner("hpc.cp1.0a1b2c3d", new io.mekha.agent.api.AgentDtos.PartnerReservation("hpc_vm2", "n2", 256,
                    io.mekha.model.StreamKey.random(), "127.0.0.1"))).hasMessageContaining("mutual TLS").hasMessageContaining("in the clear");
        }
    }

    /** What a PUT on a partner listener got: its status (-1: no connection, the handshake ended it) and body. */
    private record Sent(int status, String body) {}

    /**
     * A copy the listener must refuse, asked both ways: with the probe the agents send before a body, and straight with a
     * body (a sender that skips the probe). Both must give the same answer; the probe's is returned. The straight one
     * sends only the start of a stream: the listener answers a refusal without reading the body, and a large body still
     * being written when it closes would reach the sender as a broken pipe, not as the answer (why agents probe first).
     */
    private static Sent refused(SSLSocketFactory tls, URI listener, String id, String vm, String key,
                                io.mekha.agent.api.AgentDtos.PartnerStreamHeader header) throws Exception {
        Sent probed = put(tls, listener, id, vm, key, header, null);
        Sent straight = put(tls, listener, id, vm, key, header, new byte[4096]);
        assertThat(straight.status()).as("a body without the probe: %s", straight.body()).isEqualTo(probed.status());
        return probed;
    }

    /** One PUT on the partner listener; {@code body} null: the probe (no body). */
    private static Sent put(SSLSocketFactory tls, URI listener, String id, String vm, String key, io.mekha.agent.api.AgentDtos.PartnerStreamHeader header,
                            byte[] body) throws Exception {
        var connection = (javax.net.ssl.HttpsURLConnection) listener.resolve("/v1/checkpoints/" + id + "/partners/" + vm).toURL().openConnection();
        connection.setSSLSocketFactory(tls);
        connection.setHostnameVerifier((host, session) -> true);
        connection.setConnectTimeout(5000);
        connection.setReadTimeout(10000);
        connection.setRequestMethod("PUT");
        connection.setDoOutput(true);
        connection.setRequestProperty("Mekha-Copy-Key", key);
        connection.setRequestProperty("Mekha-Copy", Base64.getUrlEncoder().withoutPadding().encodeToString(
                io.mekha.agent.api.Json.mapper().writeValueAsBytes(header)));
        if (body == null) {
            connection.setRequestProperty("Mekha-Copy-Probe", "1");
        }
        connection.setFixedLengthStreamingMode(body == null ? 0 : body.length);
        try {
            try (var out = connection.getOutputStream()) {
                if (body != null) {
                    out.write(body);
                }
            }
            int status = connection.getResponseCode();
            try (var in = status >= 400 ? connection.getErrorStream() : connection.getInputStream()) {
                return new Sent(status, in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8));
            }
        } catch (java.io.IOException e) {
            return new Sent(-1, e.toString());
        } finally {
            connection.disconnect();
        }
    }

    @Test
    void theOperatorSignsOnlyARequestFromAnAgentPodForItsOwnNode() throws Exception {
        kube.agentPod("n1", URI.create("https://127.0.0.1:7070"));
        kube.agentPod("n2", URI.create("https://127.0.0.2:7070"));
        var fromN1 = kube.agentPodIdentity("n1");
        // n1's agent pod asks for n2's name (to be called as n2, and handed n2's work)
        assertDenied(request("n1-as-n2", kube.clientAs("t1", fromN1), KeyPairs.request(KeyPairs.ec(), TlsNames.agent("n2"))),
                "asks for node n2 from a pod on node n1");
        // the same, from a token that does not say its node: the pod's own node decides
        var withoutNode = new MockKubernetes.Requester(fromN1.username(), Map.of("authentication.kubernetes.io/pod-name", List.of("mekha-agent-n1"),
                "authentication.kubernetes.io/pod-uid", fromN1.extra().get("authentication.kubernetes.io/pod-uid")));
        assertDenied(request("n1-as-n2-old-token", kube.clientAs("t2", withoutNode), KeyPairs.request(KeyPairs.ec(), TlsNames.agent("n2"))),
                "its pod mekha-system/mekha-agent-n1 runs on node n1");
        // a tenant's ServiceAccount asks for an agent's certificate
        assertDenied(request("tenant", kube.clientAs("t3", new MockKubernetes.Requester("system:serviceaccount:hpc:default", Map.of())),
                KeyPairs.request(KeyPairs.ec(), TlsNames.agent("n1"))), "made by system:serviceaccount:hpc:default, not by the Mekha agent's ServiceAccount");
        // the agent's ServiceAccount, but a token not bound to a pod (a long-lived Secret token)
        assertDenied(request("unbound", kube.clientAs("t4", new MockKubernetes.Requester(fromN1.username(), Map.of())),
                KeyPairs.request(KeyPairs.ec(), TlsNames.agent("n1"))), "not made with a token bound to a pod");
        // a token of a pod that is gone (same name, a new pod now)
        var stale = new MockKubernetes.Requester(fromN1.username(), Map.of("authentication.kubernetes.io/pod-name", List.of("mekha-agent-n1"),
                "authentication.kubernetes.io/pod-uid", List.of("00000000-0000-0000-0000-000000000000"),
                "authentication.kubernetes.io/node-name", List.of("n1")));
        assertDenied(request("stale", kube.clientAs("t5", stale), KeyPairs.request(KeyPairs.ec(), TlsNames.agent("n1"))), "does not exist (any more)");
        // more in the subject than the agent's name
        KeyPair keys = KeyPairs.ec();
        var extraName = new JcaPKCS10CertificationRequestBuilder(new javax.security.auth.x500.X500Principal("CN=mekha-agent:n1,O=system:masters"),
                keys.getPublic()).build(new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate()));
        assertDenied(request("extra-name", kube.clientAs("t6", fromN1), extraName), "an agent asks for CN=mekha-agent:<its node>");
        // a request for one key signed by another (no proof it holds the key)
        var other = KeyPairs.ec();
        var unproven = new JcaPKCS10CertificationRequestBuilder(new javax.security.auth.x500.X500Principal("CN=mekha-agent:n1"),
                keys.getPublic()).build(new JcaContentSignerBuilder("SHA256withECDSA").build(other.getPrivate()));
        assertDenied(request("unproven", kube.clientAs("t7", fromN1), unproven), "not signed by the key it carries");
        // and the agent code itself, run as n1's pod but told it is n2: it stops with the operator's reason
        assertThatThrownBy(() -> AgentCertificate.obtain(kube.clientAs("t8", fromN1), NS, "n2", Clock.systemUTC(), Duration.ofSeconds(30)))
                .hasMessageContaining("was denied").hasMessageContaining("asks for node n2 from a pod on node n1");
        // what n1's pod may ask for, it gets
        CertificateSigningRequest fine = request("n1", kube.clientAs("t9", fromN1), KeyPairs.request(KeyPairs.ec(), TlsNames.agent("n1")));
        fine = awaitDecided(fine.getMetadata().getName());
        assertThat(fine.getStatus().getCertificate()).isNotEmpty();
    }

    private CertificateSigningRequest request(String name, KubernetesClient as, org.bouncycastle.pkcs.PKCS10CertificationRequest csr) {
        return as.certificates().v1().certificateSigningRequests().resource(new CertificateSigningRequestBuilder()
                .withNewMetadata().withName(name).endMetadata()
                .withNewSpec().withSignerName("mekha.io/agent").withUsages("digital signature", "server auth")
                // what a requester writes here is overwritten by the API server
                .withUsername("system:serviceaccount:mekha-system:mekha-agent")
                .withRequest(Base64.getEncoder().encodeToString(Pem.write(csr).getBytes(StandardCharsets.US_ASCII))).endSpec()
                .build()).create();
    }

    private void assertDenied(CertificateSigningRequest csr, String reason) throws InterruptedException {
        CertificateSigningRequest decided = awaitDecided(csr.getMetadata().getName());
        assertThat(decided.getStatus().getCertificate()).as("certificate issued for %s", csr.getMetadata().getName()).isNullOrEmpty();
        assertThat(decided.getStatus().getConditions()).as(csr.getMetadata().getName()).anySatisfy(c -> {
            assertThat(c.getType()).isEqualTo("Denied");
            assertThat(c.getMessage()).contains(reason);
        });
    }

    private CertificateSigningRequest awaitDecided(String name) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        CertificateSigningRequest csr = null;
        while (System.nanoTime() < deadline) {
            csr = kube.client.certificates().v1().certificateSigningRequests().withName(name).get();
            var st = csr.getStatus();
            if (st != null && ((st.getCertificate() != null && !st.getCertificate().isEmpty())
                    || (st.getConditions() != null && st.getConditions().stream().anyMatch(c -> c.getType().equals("Denied"))))) {
                return csr;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("CertificateSigningRequest " + name + " was not decided: " + (csr == null ? null : csr.getStatus()));
    }

    /** The CA as the operator keeps it in its Secret (only the operator may read that Secret). */
    private CertificateAuthority storedCa() throws Exception {
        var data = kube.client.secrets().inNamespace(NS).withName(AgentCertificates.CA_SECRET).get().getData();
        return CertificateAuthority.load(new String(Base64.getDecoder().decode(data.get("tls.crt")), StandardCharsets.US_ASCII),
                new String(Base64.getDecoder().decode(data.get("tls.key")), StandardCharsets.US_ASCII), Clock.systemUTC());
    }

    private static RenewableIdentity identity(CertificateAuthority ca, String name, CertificateAuthority.Purpose purpose) {
        KeyPair keys = KeyPairs.ec();
        return new RenewableIdentity(keys.getPrivate(), ca.issue(keys.getPublic(), name, purpose, Duration.ofHours(1)));
    }

    /** A client that trusts the agent of {@code node} under {@code ca} and shows {@code identity} (null: no certificate). */
    private static SSLSocketFactory clientTls(RenewableIdentity identity, X509Certificate ca, String node) throws Exception {
        SSLContext context = SSLContext.getInstance("TLSv1.3");
        context.init(identity == null ? null : new javax.net.ssl.KeyManager[] {identity}, new javax.net.ssl.TrustManager[] {PeerTrust.agentOf(ca, node)},
                null);
        return context.getSocketFactory();
    }

    private static void assertUnreachable(AgentClient client) {
        assertThatThrownBy(client::time).isInstanceOfSatisfying(AgentCallException.class,
                e -> assertThat(e.kind()).as(e.getMessage()).isEqualTo(ErrorKind.UNREACHABLE));
    }

    private static void assertRefused(AgentClient client, int status, String message) {
        assertThatThrownBy(client::time).isInstanceOfSatisfying(AgentCallException.class, e -> {
            assertThat(e.status()).as(e.getMessage()).isEqualTo(status);
            assertThat(e.getMessage()).contains(message);
        });
    }
}
