package io.mekha.agent.server;

import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.mekha.agent.api.ErrorKind;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Kubernetes identities for the agent: the caller sends a ServiceAccount token (the operator's, a
 * projected token with the agent's audience), the agent asks the API server whether it is valid
 * (TokenReview) and lets in only the identities it was told to. Answers are remembered briefly
 * (by the token's SHA-256, never the token) so a checkpoint's many calls cost one review.
 */
public final class TokenReviewAuthenticator implements AgentAuthenticator {

    private static final Duration REMEMBER = Duration.ofSeconds(60);

    private record Remembered(Verdict verdict, Instant until) {}

    private final KubernetesClient client;
    private final Set<String> allowedUsers;
    private final List<String> audiences;
    private final Clock clock;
    private final Map<String, Remembered> recent = new ConcurrentHashMap<>();

    /**
     * @param allowedUsers identities let in, such as {@code system:serviceaccount:mekha-system:mekha-operator}
     * @param audiences audiences the token must carry (empty: the API server's own)
     */
    public TokenReviewAuthenticator(KubernetesClient client, Set<String> allowedUsers, List<String> audiences, Clock clock) {
        if (allowedUsers.isEmpty()) {
            throw new IllegalArgumentException("name at least one identity allowed to call the agent (--allow-user)");
        }
        this.client = client;
        this.allowedUsers = Set.copyOf(allowedUsers);
        this.audiences = List.copyOf(audiences);
        this.clock = clock;
    }

    @Override
    public Verdict check(String authorizationHeader) {
        if (authorizationHeader == null || !authorizationHeader.startsWith("Bearer ") || authorizationHeader.length() <= 7) {
            return Verdict.refuse(ErrorKind.UNAUTHENTICATED, "needs 'Authorization: Bearer <ServiceAccount token>' from one of " + allowedUsers);
        }
        String token = authorizationHeader.substring(7).trim();
        String key = sha256(token);
        Instant now = clock.instant();
        Remembered known = recent.get(key);
        if (known != null && now.isBefore(known.until())) {
            return known.verdict();
        }
        Verdict verdict = review(token);
        if (verdict.refusal() != ErrorKind.UNAVAILABLE) {
            recent.put(key, new Remembered(verdict, now.plus(REMEMBER)));
        }
        if (recent.size() > 1000) {
            recent.entrySet().removeIf(e -> !now.isBefore(e.getValue().until()));
        }
        return verdict;
    }

    private Verdict review(String token) {
        TokenReview asked = new TokenReviewBuilder().withNewSpec().withToken(token).withAudiences(audiences.isEmpty() ? null : audiences)
                .endSpec().build();
        TokenReview answer;
        try {
            answer = client.resource(asked).create();
        } catch (KubernetesClientException e) {
            return Verdict.refuse(ErrorKind.UNAVAILABLE, "could not check the token with the Kubernetes API (TokenReview): " + e.getMessage());
        }
        if (answer == null || answer.getStatus() == null || !Boolean.TRUE.equals(answer.getStatus().getAuthenticated())) {
            String why = answer == null || answer.getStatus() == null || answer.getStatus().getError() == null ? "not authenticated"
                    : answer.getStatus().getError();
            return Verdict.refuse(ErrorKind.UNAUTHENTICATED, "the Kubernetes API did not accept the bearer token (TokenReview: " + why + ")");
        }
        // bound to this agent: the token must carry this agent's own audience (per node), not merely be valid
        List<String> granted = answer.getStatus().getAudiences() == null ? List.of() : answer.getStatus().getAudiences();
        if (!audiences.isEmpty() && granted.stream().noneMatch(audiences::contains)) {
            return Verdict.refuse(ErrorKind.UNAUTHENTICATED, "the bearer token is for " + (granted.isEmpty() ? "no audience" : granted)
                    + ", not this agent's " + audiences + ": ask for a token bound to this node's agent");
        }
        String user = answer.getStatus().getUser() == null ? null : answer.getStatus().getUser().getUsername();
        if (user == null || !allowedUsers.contains(user)) {
            return Verdict.refuse(ErrorKind.FORBIDDEN, "does not take calls from " + user + "; allowed: " + allowedUsers);
        }
        return Verdict.allow(user);
    }

    private static String sha256(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
