package io.mekha.model;

/**
 * The token audience of the agent on one node, {@code mekha-agent:<node>}: the operator asks the API server for a
 * token with it (TokenRequest), and that node's agent alone accepts it (TokenReview, {@code status.audiences}).
 */
public final class AgentAudience {
    public static final String PREFIX = "mekha-agent:";

    private AgentAudience() {}

    public static String of(String node) {
        return PREFIX + node;
    }
}
