package io.mekha.operator;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.agent.server.TokenReviewAuthenticator;
import io.mekha.kubevirt.KubeVirtNode;
import io.mekha.operator.service.AgentCertificates;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.function.BooleanSupplier;

/** What the operator tests on the KubeVirt runtime share: the agent on n1 as its DaemonSet runs it, and waiting. */
final class KubeVirtRig {
    private KubeVirtRig() {}

    /** A free local port, for the agent to serve on. */
    static int freePort() throws java.io.IOException {
        try (java.net.ServerSocket free = new java.net.ServerSocket(0)) {
            return free.getLocalPort();
        }
    }

    /**
     * The agent on n1 as the DaemonSet runs it: its pod, then the certificate its pod's identity asks the operator for,
     * then it serves on the pod's port over mutual TLS, taking the operator's token for n1 only.
     */
    static KubeVirtNode agentNode(Path work, MockKubernetes kube, AgentCertificates tls, int port) throws Exception {
        kube.agentPod("n1", java.net.URI.create("https://127.0.0.1:" + port));
        var certificate = io.mekha.agent.server.AgentCertificate.obtain(kube.clientAs("agent-token-n1", kube.agentPodIdentity("n1")),
                MockKubernetes.AGENT_NAMESPACE, "n1", Clock.systemUTC(), Duration.ofSeconds(60));
        return new KubeVirtNode(work, new TokenReviewAuthenticator(kube.server.createClient(), Set.of(MockKubernetes.OPERATOR_USER),
                List.of(io.mekha.model.AgentAudience.of("n1")), Clock.systemUTC()), "Bearer " + MockKubernetes.operatorToken("n1"),
                new java.net.InetSocketAddress("127.0.0.1", port), certificate.sslContext(), tls.forNode("n1"));
    }

    /** Whether KubeVirt (the test controller) runs a launcher for {@code vm} now. */
    static boolean running(FakeVirtController kubevirt, String vm) {
        try {
            kubevirt.launcher(vm);
            return true;
        } catch (AssertionError e) {
            return false;
        }
    }

    static void awaitUntil(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(what + ": not within 90 s");
            }
            Thread.sleep(100);
        }
    }

    /** The reasons of the events recorded about {@code about} in {@code namespace}. */
    static List<String> events(KubernetesClient client, String namespace, String about) {
        return client.v1().events().inNamespace(namespace).list().getItems().stream()
                .filter(e -> about.equals(e.getInvolvedObject().getName())).map(Event::getReason).toList();
    }
}
