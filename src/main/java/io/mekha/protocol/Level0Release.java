package io.mekha.protocol;

import java.util.List;

/** Drops a checkpoint's level-0 copies on every agent: its own shadows and streams, and the partner copies of them. */
final class Level0Release {
    private final List<AgentClient> agents;
    private final AgentCalls calls;

    Level0Release(List<AgentClient> agents, AgentCalls calls) {
        this.agents = agents;
        this.calls = calls;
    }

    void release(String checkpoint) {
        calls.parallel(agents, agent -> {
            agent.discard(checkpoint);
            return Boolean.TRUE;
        });
        calls.parallel(agents, agent -> {
            agent.dropPartners(checkpoint);
            return Boolean.TRUE;
        });
    }
}
