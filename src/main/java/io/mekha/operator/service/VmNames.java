package io.mekha.operator.service;

/**
 * A VM's name on the agents: on KubeVirt its domain name, {@code <namespace>_<name>}, which is unique
 * on a node (namespaces are DNS labels, without '_'), where the VM's own name is unique only in its
 * namespace; an agent running QEMUs of its own (the local runtime) knows them by the names they were
 * started with. Status and events use the VM's own name.
 */
public final class VmNames {
    private VmNames() {}

    public static String onAgent(String namespace, String vm) {
        return namespace + "_" + vm;
    }

    /** The name the agent that lists {@code onNode} knows VM {@code namespace/vm} by. */
    public static String onAgent(String namespace, String vm, java.util.Collection<String> onNode) {
        String domain = onAgent(namespace, vm);
        return onNode.contains(domain) || !onNode.contains(vm) ? domain : vm;
    }

    /** The VM's own name from its name on the agents (unchanged when it does not carry the namespace). */
    public static String inNamespace(String namespace, String onAgent) {
        String prefix = namespace + "_";
        return onAgent.startsWith(prefix) ? onAgent.substring(prefix.length()) : onAgent;
    }
}
