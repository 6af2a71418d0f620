package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.authentication.TokenRequest;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The operator's identity for one node's agent: a token of the operator's ServiceAccount bound to that
 * agent alone (audience {@code mekha-agent:<node>}), from the TokenRequest API, short-lived and renewed
 * at two thirds of its life. Each agent checks (TokenReview) that a caller's token carries its own
 * node's audience, so a token seen by one agent or taken from one node is refused by every other.
 */
public final class AgentTokens {
    /** The shortest lifetime the API server issues. */
    static final Duration LIFETIME = Duration.ofMinutes(10);

    private record Issued(String token, Instant renewAfter) {}

    private final KubernetesClient client;
    private final String namespace;
    private final String serviceAccount;
    private final Clock clock;
    private final Map<String, Issued> issued = new ConcurrentHashMap<>();

    public AgentTokens(KubernetesClient client, String namespace, String serviceAccount, Clock clock) {
        this.client = client;
        this.namespace = namespace;
        this.serviceAccount = serviceAccount;
        this.clock = clock;
    }

    /** The audience the agent on {@code node} accepts. */
    public static String audience(String node) {
        return io.mekha.model.AgentAudience.of(node);
    }

    /** The Authorization header for the agent on {@code node}. */
    public String header(String node) {
        Instant now = clock.instant();
        Issued known = issued.get(node);
        if (known != null && now.isBefore(known.renewAfter())) {
            return "Bearer " + known.token();
        }
        TokenRequest answer;
        try {
            answer = client.serviceAccounts().inNamespace(namespace).withName(serviceAccount).tokenRequest(new TokenRequestBuilder()
                    .withNewSpec().withAudiences(audience(node)).withExpirationSeconds(LIFETIME.toSeconds()).endSpec().build());
        } catch (KubernetesClientException e) {
            throw new IllegalStateException("cannot get a token for the agent on node " + node + " (TokenRequest for ServiceAccount "
                    + namespace + "/" + serviceAccount + ", audience " + audience(node) + "): " + e.getMessage()
                    + "; the operator's Role must allow create on serviceaccounts/token for its own ServiceAccount", e);
        }
        if (answer == null || answer.getStatus() == null || answer.getStatus().getToken() == null) {
            throw new IllegalStateException("the TokenRequest for ServiceAccount " + namespace + "/" + serviceAccount + " returned no token");
        }
        Instant expires = answer.getStatus().getExpirationTimestamp() == null ? now.plus(LIFETIME)
                : Instant.parse(answer.getStatus().getExpirationTimestamp());
        Instant renewAfter = now.plus(Duration.between(now, expires).multipliedBy(2).dividedBy(3));
        issued.put(node, new Issued(answer.getStatus().getToken(), renewAfter));
        return "Bearer " + answer.getStatus().getToken();
    }
}
