package io.mekha.agent.server;

/** Decides whether a request may reach the agent, from its Authorization header. */
public interface AgentAuthenticator {

    /**
     * The outcome: allowed (status 0) with the caller's identity, or refused with the HTTP status
     * (401 unauthenticated, 403 authenticated but not allowed, 503 cannot check now) and why.
     */
    record Verdict(int status, String identity, String problem) {
        public static Verdict allow(String identity) {
            return new Verdict(0, identity, null);
        }

        public static Verdict refuse(int status, String problem) {
            return new Verdict(status, null, problem);
        }

        public boolean allowed() {
            return status == 0;
        }
    }

    Verdict check(String authorizationHeader);
}
