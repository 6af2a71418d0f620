package io.mekha.operator;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import io.mekha.operator.service.KubeVirt;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Queue;
import java.util.stream.Stream;

/**
 * The fabric8 mock API server in CRUD mode, standing in for the Kubernetes API server (which cannot
 * run here): Mekha's CRDs from crds/ loaded, TokenReview answered as the API server would for the
 * tokens the test hands out, and helpers to create what KubeVirt and the agent DaemonSet would.
 */
public final class MockKubernetes implements AutoCloseable {
    public static final String OPERATOR_USER = "system:serviceaccount:mekha-system:mekha-operator";
    /** A token of the operator's ServiceAccount for the old shared audience {@code mekha-agent}: no agent takes it now. */
    public static final String OPERATOR_TOKEN = "operator-projected-token-0123456789";
    private static final String ISSUED = "operator-token-for-";
    /** A valid token of another ServiceAccount: authenticated, but not allowed to call agents. */
    public static final String INTRUDER_TOKEN = "default-sa-token-0123456789";
    public static final String AGENT_NAMESPACE = "mekha-system";

    public final KubernetesMockServer server;
    public final KubernetesClient client;
    /** Who the API server authenticates each bearer token as, for what it records on a CertificateSigningRequest. */
    private final Map<String, Requester> requesters = new java.util.concurrent.ConcurrentHashMap<>();

    /** A caller as the API server's authenticator sees it: its user name and what a token bound to a pod adds ({@code extra}). */
    public record Requester(String username, Map<String, java.util.List<String>> extra) {}

    /**
     * The API server's part in a CertificateSigningRequest the mock server cannot play: on create it overwrites the
     * requester fields ({@code spec.username}, {@code uid}, {@code groups}, {@code extra}) with the identity of the
     * token that sent it, whatever the request said; and it takes {@code PUT .../approval} (as the status).
     */
    private static final class RequesterRecording extends KubernetesMixedDispatcher {
        private final Map<String, Requester> requesters;

        RequesterRecording(Map<ServerRequest, Queue<ServerResponse>> responses, Map<String, Requester> requesters) {
            super(responses);
            this.requesters = requesters;
        }

        @Override
        public io.fabric8.mockwebserver.http.MockResponse dispatch(io.fabric8.mockwebserver.http.RecordedRequest request) {
            if ("POST".equals(request.getMethod()) && request.getPath().startsWith("/apis/certificates.k8s.io/v1/certificatesigningrequests")
                    && !request.getPath().substring("/apis/certificates.k8s.io/v1/certificatesigningrequests".length()).startsWith("/")) {
                var csr = Serialization.unmarshal(request.getUtf8Body(), io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequest.class);
                String auth = request.getHeader("Authorization");
                Requester who = auth == null ? null : requesters.get(auth.replaceFirst("^Bearer ", ""));
                csr.getSpec().setUsername(who == null ? "system:anonymous" : who.username());
                csr.getSpec().setUid(java.util.UUID.nameUUIDFromBytes(csr.getSpec().getUsername().getBytes()).toString());
                csr.getSpec().setGroups(java.util.List.of(who == null ? "system:unauthenticated" : "system:authenticated"));
                csr.getSpec().setExtra(who == null ? null : who.extra());
                byte[] body = Serialization.asJson(csr).getBytes(java.nio.charset.StandardCharsets.UTF_8);
                request = new io.fabric8.mockwebserver.http.RecordedRequest(request.getHttpVersion(), request.method(), request.getPath(),
                        request.getHeaders(), new io.fabric8.mockwebserver.http.Buffer(body));
            }
            if ("PUT".equals(request.getMethod()) && request.getPath().startsWith("/apis/certificates.k8s.io/v1/certificatesigningrequests/")
                    && request.getPath().endsWith("/approval")) {
                // the approval subresource writes status.conditions, which the mock server's CRUD only knows as the status subresource
                String path = request.getPath().substring(0, request.getPath().length() - "/approval".length()) + "/status";
                request = new io.fabric8.mockwebserver.http.RecordedRequest(request.getHttpVersion(), request.method(), path,
                        request.getHeaders(), new io.fabric8.mockwebserver.http.Buffer(request.getBody().getBytes()));
            }
            return super.dispatch(request);
        }
    }

    /** A client that authenticates with {@code token}, which the API server takes for {@code who}. */
    public KubernetesClient clientAs(String token, Requester who) {
        requesters.put(token, who);
        return new io.fabric8.kubernetes.client.KubernetesClientBuilder().withConfig(new io.fabric8.kubernetes.client.ConfigBuilder(
                server.createClient().getConfiguration()).withOauthToken(token).build()).build();
    }

    /** The identity a token of the agent's ServiceAccount, projected into its pod on {@code node}, is authenticated as. */
    public Requester agentPodIdentity(String node) {
        var pod = client.pods().inNamespace(AGENT_NAMESPACE).withName("mekha-agent-" + node).get();
        return new Requester("system:serviceaccount:" + AGENT_NAMESPACE + ":mekha-agent", Map.of(
                "authentication.kubernetes.io/pod-name", java.util.List.of(pod.getMetadata().getName()),
                "authentication.kubernetes.io/pod-uid", java.util.List.of(pod.getMetadata().getUid()),
                "authentication.kubernetes.io/node-name", java.util.List.of(node)));
    }

    public MockKubernetes() throws IOException {
        Map<ServerRequest, Queue<ServerResponse>> responses = new HashMap<>();
        server = new KubernetesMockServer(new Context(), new MockWebServer(), responses, new RequesterRecording(responses, requesters), false);
        server.init();
        client = server.createClient();
        server.expect().post().withPath("/apis/authentication.k8s.io/v1/tokenreviews").andReply(201, request -> review(request.getUtf8Body()))
                .always();
        server.expect().post().withPath("/api/v1/namespaces/" + AGENT_NAMESPACE + "/serviceaccounts/mekha-operator/token")
                .andReply(201, request -> issue(request.getUtf8Body())).always();
        try (Stream<Path> crds = Files.list(Path.of("crds"))) {
            for (Path file : crds.filter(p -> p.toString().endsWith(".yml")).toList()) {
                try (InputStream in = Files.newInputStream(file)) {
                    client.resource(Serialization.unmarshal(in, CustomResourceDefinition.class)).create();
                }
            }
        }
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(AGENT_NAMESPACE).endMetadata().build()).create();
    }

    /** The token the API server issues the operator for the agent on {@code node} (TokenRequest, audience mekha-agent:<node>). */
    public static String operatorToken(String node) {
        return ISSUED + io.mekha.model.AgentAudience.of(node);
    }

    /** A TokenRequest for the operator's ServiceAccount, answered as the API server would: a token bound to the audience asked for. */
    private static io.fabric8.kubernetes.api.model.authentication.TokenRequest issue(String body) {
        var asked = Serialization.unmarshal(body, io.fabric8.kubernetes.api.model.authentication.TokenRequest.class);
        String audience = asked.getSpec().getAudiences().get(0);
        return new io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder(asked).withNewStatus().withToken(ISSUED + audience)
                .withExpirationTimestamp(java.time.Instant.now().plusSeconds(asked.getSpec().getExpirationSeconds()).toString()).endStatus().build();
    }

    /**
     * What the API server answers a TokenReview with for the tokens of this test: a token is valid for the audiences it
     * was issued with, and a review that asks for other audiences is refused, as the API server refuses it.
     */
    private static TokenReview review(String body) {
        TokenReview asked = Serialization.unmarshal(body, TokenReview.class);
        String token = asked.getSpec().getToken();
        TokenReviewBuilder answer = new TokenReviewBuilder(asked);
        String audience = OPERATOR_TOKEN.equals(token) ? "mekha-agent" : token != null && token.startsWith(ISSUED) ? token.substring(ISSUED.length()) : null;
        if (audience != null) {
            java.util.List<String> wanted = asked.getSpec().getAudiences();
            if (wanted != null && !wanted.isEmpty() && !wanted.contains(audience)) {
                return answer.withNewStatus().withAuthenticated(false).withError("token audiences [\"" + audience + "\"] is invalid for the target audiences "
                        + wanted).endStatus().build();
            }
            return answer.withNewStatus().withAuthenticated(true).withNewUser().withUsername(OPERATOR_USER).endUser()
                    .withAudiences(audience).endStatus().build();
        }
        if (INTRUDER_TOKEN.equals(token)) {
            // any ServiceAccount may ask for a token of its own with the agent's audience: valid, but not the operator
            return answer.withNewStatus().withAuthenticated(true).withNewUser().withUsername("system:serviceaccount:default:default").endUser()
                    .withAudiences(asked.getSpec().getAudiences()).endStatus().build();
        }
        return answer.withNewStatus().withAuthenticated(false).withError("invalid bearer token").endStatus().build();
    }

    public URI url() {
        return URI.create(server.url("/"));
    }

    public void namespace(String name) {
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(name).endMetadata().build()).create();
    }

    /** A VirtualMachine and its running instance on {@code node}, as KubeVirt would have them. */
    public void runningVm(String namespace, String name, String node, Map<String, String> labels) {
        GenericKubernetesResource vm = new GenericKubernetesResourceBuilder().withApiVersion("kubevirt.io/v1").withKind("VirtualMachine")
                .withNewMetadata().withName(name).withNamespace(namespace).withLabels(labels).endMetadata()
                .withAdditionalProperties(Map.of("spec", Map.of("runStrategy", "Always"), "status", Map.of("ready", true, "printableStatus", "Running")))
                .build();
        client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inNamespace(namespace).resource(vm).create();
        GenericKubernetesResource vmi = new GenericKubernetesResourceBuilder().withApiVersion("kubevirt.io/v1").withKind("VirtualMachineInstance")
                .withNewMetadata().withName(name).withNamespace(namespace).withLabels(labels).endMetadata()
                .withAdditionalProperties(Map.of("status", Map.of("phase", "Running", "nodeName", node)))
                .build();
        client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace).resource(vmi).create();
    }

    /** A VirtualMachine set to run ({@code runStrategy: Always}), with no instance yet: KubeVirt (or a test playing it) makes one. */
    public void vm(String namespace, String name, Map<String, String> labels, java.util.List<Map<String, Object>> volumes) {
        vm(namespace, name, labels, volumes, null);
    }

    /** A VirtualMachine set to run, its template pinned to {@code node} (null: anywhere). */
    public void vm(String namespace, String name, Map<String, String> labels, java.util.List<Map<String, Object>> volumes, String node) {
        Map<String, Object> templateSpec = new java.util.LinkedHashMap<>(Map.of("domain", Map.of(), "volumes", volumes));
        if (node != null) {
            templateSpec.put("nodeSelector", Map.of("kubernetes.io/hostname", node));
        }
        GenericKubernetesResource vm = new GenericKubernetesResourceBuilder().withApiVersion("kubevirt.io/v1").withKind("VirtualMachine")
                .withNewMetadata().withName(name).withNamespace(namespace).withLabels(labels).endMetadata()
                .withAdditionalProperties(Map.of("spec", Map.of("runStrategy", "Always", "template", Map.of("spec", templateSpec))))
                .build();
        client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inNamespace(namespace).resource(vm).create();
    }

    /** The agent DaemonSet's pod on {@code node}, ready, serving at {@code agent}. */
    public void agentPod(String node, URI agent) {
        client.pods().inNamespace(AGENT_NAMESPACE).resource(new PodBuilder()
                .withNewMetadata().withName("mekha-agent-" + node).withNamespace(AGENT_NAMESPACE).withUid(java.util.UUID.randomUUID().toString())
                .withLabels(Map.of("app.kubernetes.io/name", "mekha-agent")).endMetadata()
                .withNewSpec().withNodeName(node).addNewContainer().withName("agent").withImage("mekha-agent")
                .addNewPort().withName("agent").withContainerPort(agent.getPort()).endPort().endContainer().endSpec()
                .withNewStatus().withPhase("Running").withPodIP(agent.getHost())
                .addNewCondition().withType("Ready").withStatus("True").endCondition().endStatus()
                .build()).create();
    }

    /** Polls a Mekha resource until its status passes {@code test}; fails with the last status seen. */
    public <T extends io.fabric8.kubernetes.client.CustomResource<?, ?>> T awaitStatus(Class<T> type, String namespace, String name,
                                                                                     java.util.function.Predicate<T> test,
                                                                                     java.time.Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        T last = null;
        while (System.nanoTime() < deadline) {
            last = client.resources(type).inNamespace(namespace).withName(name).get();
            if (last != null && last.getStatus() != null && test.test(last)) {
                return last;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(type.getSimpleName() + " " + name + " did not get there within " + timeout + "; status: "
                + (last == null ? "gone" : Serialization.asJson(last.getStatus())));
    }

    @Override
    public void close() {
        client.close();
        server.destroy();
    }
}
