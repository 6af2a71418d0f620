package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.protocol.AgentClient;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Finds the agent of each node the Kubernetes way: the pods of the agent DaemonSet (by label, in
 * the agent namespace), the one on the node, ready, at its pod IP and the container port named
 * {@code agent}. Clients carry the operator's identity (a ServiceAccount token the agent checks with
 * TokenReview, bound to that node's agent) and, with TLS, its client certificate, and trust only a certificate that
 * names that node's agent.
 */
public final class AgentDirectory {

    /** Makes a client for an agent; tests route some through a proxy they can cut. */
    @FunctionalInterface
    public interface ClientFactory {
        AgentClient create(String node, URI uri, String authorization, Duration timeout, javax.net.ssl.SSLSocketFactory tls);
    }

    /**
     * @param namespace where the agent DaemonSet runs
     * @param podLabels labels of its pods
     * @param authorization the Authorization header to send to the agent of a node (e.g. {@code Bearer <token>}, a token
     *     bound to that node's agent: {@link AgentTokens})
     * @param tls mutual TLS for the agent of a node ({@link AgentCertificates#forNode}), or null to call agents over plain HTTP
     */
    public record Settings(String namespace, Map<String, String> podLabels, String portName, java.util.function.Function<String, String> authorization,
                           Duration callTimeout, java.util.function.Function<String, javax.net.ssl.SSLSocketFactory> tls) {}

    private final KubernetesClient client;
    private final Settings settings;
    private final ClientFactory factory;

    public AgentDirectory(KubernetesClient client, Settings settings, ClientFactory factory) {
        this.client = client;
        this.settings = settings;
        this.factory = factory;
    }

    public AgentDirectory(KubernetesClient client, Settings settings) {
        this(client, settings, AgentClient::new);
    }

    /** The agent serving {@code node}. */
    /** The namespace the agents (and the operator) run in: where storage locations' credentials live. */
    public String namespace() {
        return settings.namespace();
    }

    public AgentClient forNode(String node) throws Refusal {
        List<Pod> pods = agentPods();
        Pod pod = pods.stream().filter(p -> node.equals(p.getSpec().getNodeName())).findFirst().orElse(null);
        if (pod == null) {
            throw new Refusal(Reasons.AGENT_NOT_FOUND, "no Mekha agent pod on node " + node + " (pods labelled " + settings.podLabels()
                    + " in namespace " + settings.namespace() + "); is the mekha-agent DaemonSet scheduled there?");
        }
        String problem = notServing(pod);
        if (problem != null) {
            throw new Refusal(Reasons.AGENT_NOT_READY, "the Mekha agent on node " + node + " (pod " + pod.getMetadata().getName() + ") " + problem);
        }
        return client(pod);
    }

    /** Every serving agent, for work that may land on any node (restores, partner copies). */
    public List<AgentClient> all() {
        List<AgentClient> agents = new ArrayList<>();
        for (Pod pod : agentPods()) {
            if (notServing(pod) == null) {
                agents.add(client(pod));
            }
        }
        return agents;
    }

    private List<Pod> agentPods() {
        return client.pods().inNamespace(settings.namespace()).withLabels(settings.podLabels()).list().getItems();
    }

    private String notServing(Pod pod) {
        if (pod.getStatus() == null || !"Running".equals(pod.getStatus().getPhase())) {
            return "is not running (" + (pod.getStatus() == null ? "no status" : pod.getStatus().getPhase()) + ")";
        }
        boolean ready = pod.getStatus().getConditions() != null && pod.getStatus().getConditions().stream()
                .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
        if (!ready) {
            return "is not ready";
        }
        if (pod.getStatus().getPodIP() == null) {
            return "has no pod IP yet";
        }
        if (port(pod) == null) {
            return "declares no container port named '" + settings.portName() + "'";
        }
        return null;
    }

    private Integer port(Pod pod) {
        return pod.getSpec().getContainers().stream()
                .flatMap(c -> c.getPorts() == null ? java.util.stream.Stream.<ContainerPort>empty() : c.getPorts().stream())
                .filter(p -> settings.portName().equals(p.getName())).map(ContainerPort::getContainerPort).findFirst().orElse(null);
    }

    private AgentClient client(Pod pod) {
        String ip = pod.getStatus().getPodIP();
        String node = pod.getSpec().getNodeName();
        URI uri = URI.create((settings.tls() == null ? "http://" : "https://") + (ip.contains(":") ? "[" + ip + "]" : ip) + ":" + port(pod));
        return factory.create(node, uri, settings.authorization().apply(node), settings.callTimeout(),
                settings.tls() == null ? null : settings.tls().apply(node));
    }
}
