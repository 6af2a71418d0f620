package io.mekha.operator.app;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.micrometer.core.instrument.MeterRegistry;
import io.mekha.operator.service.AgentCertificates;
import io.mekha.operator.service.AgentDirectory;
import io.mekha.operator.service.AgentTokens;
import io.mekha.operator.service.OperatorMetrics;
import io.mekha.operator.service.OperatorServices;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * Wires the operator's services for the Quarkus operator process from configuration
 * ({@code mekha.operator.*}, settable as environment variables in the Deployment).
 */
@ApplicationScoped
public class OperatorBeans {

    @ConfigProperty(name = "mekha.operator.agent-namespace", defaultValue = "mekha-system")
    String agentNamespace;

    /** Label selector of the agent DaemonSet's pods, {@code key=value[,key=value]}. */
    @ConfigProperty(name = "mekha.operator.agent-selector", defaultValue = "app.kubernetes.io/name=mekha-agent")
    String agentSelector;

    @ConfigProperty(name = "mekha.operator.agent-port-name", defaultValue = "agent")
    String agentPortName;

    /** The operator's own ServiceAccount (in the agents' namespace): it asks for a token per node's agent (TokenRequest). */
    @ConfigProperty(name = "mekha.operator.service-account", defaultValue = "mekha-operator")
    String serviceAccount;

    /**
     * Mutual TLS to the agents (their DaemonSet runs with {@code --tls-from-csr}): the operator keeps the CA, signs the
     * agents' CertificateSigningRequests and calls them over https only. Off: plain HTTP, for a cluster whose agents
     * were started without TLS.
     */
    @ConfigProperty(name = "mekha.operator.agent-tls", defaultValue = "true")
    boolean agentTls;

    /** The agents' ServiceAccount (in the agents' namespace): the only identity whose certificate requests are signed. */
    @ConfigProperty(name = "mekha.operator.agent-service-account", defaultValue = "mekha-agent")
    String agentServiceAccount;

    @ConfigProperty(name = "mekha.operator.agent-call-timeout", defaultValue = "PT30S")
    Duration agentCallTimeout;

    @ConfigProperty(name = "mekha.operator.observe-every", defaultValue = "PT5S")
    Duration observeEvery;

    @Produces
    @Singleton
    Clock clock() {
        return Clock.systemUTC();
    }

    @Produces
    @Singleton
    OperatorServices services(KubernetesClient client, MeterRegistry registry, Clock clock) {
        AgentTokens tokens = new AgentTokens(client, agentNamespace, serviceAccount, clock);
        AgentCertificates certificates = agentTls
                ? new AgentCertificates(client, agentNamespace, agentServiceAccount, labels(agentSelector), clock).start() : null;
        AgentDirectory agents = new AgentDirectory(client, new AgentDirectory.Settings(agentNamespace, labels(agentSelector), agentPortName,
                tokens::header, agentCallTimeout, certificates == null ? null : certificates::forNode));
        return OperatorServices.create(client, agents, new OperatorMetrics(registry), clock, observeEvery);
    }

    static Map<String, String> labels(String selector) {
        Map<String, String> labels = new LinkedHashMap<>();
        for (String part : selector.split(",")) {
            String[] kv = part.trim().split("=", 2);
            if (kv.length != 2 || kv[0].isBlank()) {
                throw new IllegalArgumentException("mekha.operator.agent-selector '" + selector + "' must be key=value[,key=value]");
            }
            labels.put(kv[0].trim(), kv[1].trim());
        }
        return labels;
    }
}
