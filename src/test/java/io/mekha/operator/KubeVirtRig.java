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

    /**
     * The agent on {@code node} as the DaemonSet runs it (its pod, its certificate, mutual TLS, a partner listener), driving
     * only the launchers {@code onThisNode} says are that node's.
     */
    static KubeVirtNode agentNode(Path work, MockKubernetes kube, AgentCertificates tls, int port, String node,
                                  java.util.function.Predicate<io.mekha.agent.kubevirt.LauncherQemu> onThisNode) throws Exception {
        kube.agentPod(node, java.net.URI.create("https://127.0.0.1:" + port));
        var certificate = io.mekha.agent.server.AgentCertificate.obtain(kube.clientAs("agent-token-" + node, kube.agentPodIdentity(node)),
                MockKubernetes.AGENT_NAMESPACE, node, Clock.systemUTC(), Duration.ofSeconds(60));
        return new KubeVirtNode(work, node, new TokenReviewAuthenticator(kube.server.createClient(), Set.of(MockKubernetes.OPERATOR_USER),
                List.of(io.mekha.model.AgentAudience.of(node)), Clock.systemUTC()), "Bearer " + MockKubernetes.operatorToken(node),
                new java.net.InetSocketAddress("127.0.0.1", port), certificate, tls.forNode(node), onThisNode);
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

    /** The source run (the first launcher, which ran on past the cut) and the VM's current one agree on every round both reached. */
    static void assertExact(FakeVirtController kubevirt, String vm, long cutRound) throws Exception {
        List<io.mekha.kubevirt.LauncherPods.Launcher> launchers = kubevirt.history.get(vm);
        java.util.TreeMap<Long, String> source = io.mekha.local.DirtierLog.parse(java.nio.file.Files.readAllLines(launchers.get(0).console()));
        Path console = kubevirt.launcher(vm).console();
        io.mekha.kubevirt.LauncherPods.awaitRound(console, source.lastKey() + 1);
        java.util.TreeMap<Long, String> after = io.mekha.local.DirtierLog.parse(java.nio.file.Files.readAllLines(console));
        org.assertj.core.api.Assertions.assertThat(after.firstKey()).as("%s goes on from the cut", vm).isLessThanOrEqualTo(cutRound + 1);
        java.util.TreeMap<Long, String[]> both = io.mekha.local.DirtierLog.overlap(source, after);
        org.assertj.core.api.Assertions.assertThat(both).hasSizeGreaterThanOrEqualTo(3);
        both.forEach((round, hashes) -> org.assertj.core.api.Assertions.assertThat(hashes[1]).as("%s round %d after the recovery", vm, round)
                .isEqualTo(hashes[0]));
    }

    /** Node {@code name} as the node controller reports it: Ready or NotReady (the kubelet stopped posting status), since now. */
    static void nodeReady(KubernetesClient client, String name, boolean ready) {
        var node = new io.fabric8.kubernetes.api.model.NodeBuilder().withNewMetadata().withName(name).endMetadata().withNewStatus().addNewCondition()
                .withType("Ready").withStatus(ready ? "True" : "Unknown").withReason(ready ? "KubeletReady" : "NodeStatusUnknown")
                .withLastTransitionTime(java.time.Instant.now().toString()).endCondition().endStatus().build();
        if (client.nodes().withName(name).get() == null) {
            client.nodes().resource(node).create();
        } else {
            client.nodes().resource(node).updateStatus();
        }
    }

    /**
     * Schedule {@code vc} of {@code namespace} with automatic recovery (at most 2 within 1h, 3 s backoff, a 2 s node grace
     * period), taking {@code template}'s checkpoints once a year: the tests make its checkpoints themselves.
     */
    static io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule recoverySchedule(String namespace,
                                                                                  io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec template) {
        var s = new io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule();
        s.setMetadata(new io.fabric8.kubernetes.api.model.ObjectMetaBuilder().withName("vc").withNamespace(namespace).build());
        s.setSpec(new io.mekha.api.v1alpha1.VirtualClusterCheckpointScheduleSpec());
        s.getSpec().schedule = "0 0 1 1 *";
        s.getSpec().template = new io.mekha.api.v1alpha1.CheckpointTemplate();
        s.getSpec().template.spec = template;
        s.getSpec().recovery = new io.mekha.api.v1alpha1.RecoverySpec();
        s.getSpec().recovery.policy = io.mekha.api.v1alpha1.RecoveryPolicy.Automatic;
        s.getSpec().recovery.maxRecoveries = 2;
        s.getSpec().recovery.window = "1h";
        s.getSpec().recovery.backoff = "3s";
        s.getSpec().recovery.nodeGracePeriod = "2s";
        s.setStatus(null);
        return s;
    }

    /** The restores the operator made to recover schedule {@code vc} of {@code namespace}. */
    static List<io.mekha.api.v1alpha1.VirtualClusterRestore> recoveryRestores(KubernetesClient client, String namespace) {
        return client.resources(io.mekha.api.v1alpha1.VirtualClusterRestore.class).inNamespace(namespace)
                .withLabel(io.mekha.api.v1alpha1.MekhaApi.SCHEDULE_LABEL, "vc").list().getItems();
    }

    /** Schedule {@code vc} of {@code namespace} once its recovery status passes {@code test}. */
    static io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule awaitSchedule(MockKubernetes kube, String namespace,
                                                                                java.util.function.Predicate<io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule> test,
                                                                                String what) throws InterruptedException {
        var s = kube.awaitStatus(io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule.class, namespace, "vc",
                x -> x.getStatus().recovery != null && test.test(x), Duration.ofMinutes(4));
        org.assertj.core.api.Assertions.assertThat(test.test(s)).as(what + "; status: "
                + io.fabric8.kubernetes.client.utils.Serialization.asJson(s.getStatus().recovery)).isTrue();
        return s;
    }
}
