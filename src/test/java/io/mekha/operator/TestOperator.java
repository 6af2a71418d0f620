package io.mekha.operator;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.mekha.operator.service.AgentDirectory;
import io.mekha.operator.service.AgentTokens;
import io.mekha.operator.service.OperatorMetrics;
import io.mekha.operator.service.OperatorServices;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An operator process's worth of Mekha in the test JVM: JOSDK with Mekha's three reconcilers over
 * its own API client (server-side apply off: the mock server does not do it), the same wiring
 * the Quarkus operator has. Closing it stops reconciling; a test can start another over the same
 * API server to play an operator restart.
 */
public final class TestOperator implements AutoCloseable {
    public final OperatorServices services;
    public final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    private final Operator operator;
    private final KubernetesClient client;
    private final Map<String, AtomicInteger> reconciles = new ConcurrentHashMap<>();

    public TestOperator(KubernetesClient client, AgentDirectory.ClientFactory agents, Clock clock) {
        this(client, agents, clock, true, null);
    }

    /** Calling agents over mutual TLS with {@code tls} (the operator's CA and client certificate, as its beans do). */
    public TestOperator(KubernetesClient client, Clock clock, io.mekha.operator.service.AgentCertificates tls) {
        this(client, io.mekha.protocol.AgentClient::new, clock, true, tls);
    }

    /** Only the schedule controller, for tests that play the checkpoint controller themselves. */
    public static TestOperator schedulesOnly(KubernetesClient client, Clock clock) {
        return new TestOperator(client, io.mekha.protocol.AgentClient::new, clock, false, null);
    }

    private TestOperator(KubernetesClient client, AgentDirectory.ClientFactory agents, Clock clock, boolean all,
                         io.mekha.operator.service.AgentCertificates tls) {
        this.client = client;
        // a token per node's agent from the (mock) API server's TokenRequest, as the operator's own beans do
        AgentTokens tokens = new AgentTokens(client, MockKubernetes.AGENT_NAMESPACE, "mekha-operator", clock);
        AgentDirectory directory = new AgentDirectory(client, new AgentDirectory.Settings(MockKubernetes.AGENT_NAMESPACE,
                Map.of("app.kubernetes.io/name", "mekha-agent"), "agent", tokens::header, Duration.ofSeconds(30), tls == null ? null : tls::forNode), agents);
        services = OperatorServices.create(client, directory, new OperatorMetrics(meters), clock, Duration.ofMillis(250));
        operator = new Operator(o -> o.withKubernetesClient(client).withUseSSAToPatchPrimaryResource(false).withCloseClientOnStop(false)
                .withSSABasedCreateUpdateMatchForDependentResources(false)
                .withMetrics(new io.javaoperatorsdk.operator.api.monitoring.Metrics() {
                    @Override
                    public void reconciliationExecutionFinished(io.fabric8.kubernetes.api.model.HasMetadata resource, Map<String, Object> metadata) {
                        reconciles.computeIfAbsent(key(resource.getClass(), resource.getMetadata().getName()), k -> new AtomicInteger()).incrementAndGet();
                    }
                }));
        if (all) {
            operator.register(new CheckpointReconciler(services));
            operator.register(new RestoreReconciler(services));
        }
        operator.register(new ScheduleReconciler(services));
        operator.start();
    }

    /**
     * How many reconciles of the named resource have run to their end: a test that asserts that
     * nothing happens waits for reconciles to have run, not for time to pass.
     */
    public int reconciles(Class<? extends io.fabric8.kubernetes.api.model.HasMetadata> type, String name) {
        AtomicInteger n = reconciles.get(key(type, name));
        return n == null ? 0 : n.get();
    }

    private static String key(Class<?> type, String name) {
        return type.getSimpleName() + "/" + name;
    }

    public TestOperator(KubernetesClient client, Clock clock) {
        this(client, io.mekha.protocol.AgentClient::new, clock);
    }

    /** Stops reconciling and drops the runs' connections, as a killed operator process would (nothing is cleaned up). */
    public void crash() {
        operator.stop();
        client.close();
    }

    @Override
    public void close() {
        operator.stop();
        services.runs().close();
    }
}
