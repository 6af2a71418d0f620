package io.mekha.agent.server;

import io.mekha.agent.api.ErrorKind;

/** Decides whether a request may reach the agent, from its Authorization header. */
public interface AgentAuthenticator {

    /**
     * The outcome: allowed (no refusal) with the caller's identity, or refused: UNAUTHENTICATED, FORBIDDEN (a known
     * identity that may not call), UNAVAILABLE (cannot check now), and why.
     */
    record Verdict(ErrorKind refusal, String identity, String problem) {
        public static Verdict allow(String identity) {
            return new Verdict(null, identity, null);
        }

        public static Verdict refuse(ErrorKind refusal, String problem) {
            return new Verdict(refusal, null, problem);
        }

        public boolean allowed() {
            return refusal == null;
        }
    }

    Verdict check(String authorizationHeader);
}
