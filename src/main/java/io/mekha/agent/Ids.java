package io.mekha.agent;

/** Checkpoint ids as the agent accepts them: they name directories and sockets, so nothing else passes. */
final class Ids {
    private Ids() {}

    static void require(String id) throws AgentException {
        if (id == null || !VmRegistry.NAME.matcher(id).matches()) {
            throw AgentException.invalid("checkpoint id '" + id + "' must be letters, digits, '.', '_' or '-' (at most 63)");
        }
    }
}
