package io.mekha.agent;

/** Checkpoint ids and VM names as the agent accepts them: they name directories, files and sockets, so nothing else passes. */
final class Ids {
    /** A VM's name on a node: its own, or KubeVirt's domain {@code <namespace>_<vmi>} (two names of up to 63). */
    private static final java.util.regex.Pattern VM = java.util.regex.Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,252}");

    private Ids() {}

    static void requireVm(String vm) throws AgentException {
        if (vm == null || !VM.matcher(vm).matches()) {
            throw AgentException.invalid("VM name '" + vm + "' must be letters, digits, '.', '_' or '-' (at most 253)");
        }
    }

    static void require(String id) throws AgentException {
        if (id == null || !VmRegistry.NAME.matcher(id).matches()) {
            throw AgentException.invalid("checkpoint id '" + id + "' must be letters, digits, '.', '_' or '-' (at most 63)");
        }
    }
}
