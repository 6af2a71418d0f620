package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.model.PodIdentity;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The virt-launcher pod of each VMI, as virt-handler finds it: the running pod labelled
 * {@code kubevirt.io/created-by=<VMI uid>} on the VMI's node, and its {@code compute} container. The
 * operator names these to the agents before it acts, and an agent touches only the QEMU that runs in
 * that container (a process's cgroup, which no tenant can forge): a tenant's process named like another
 * namespace's VM is never fed that VM's memory or disk.
 */
public final class LauncherPodIdentities {
    public static final String CREATED_BY = "kubevirt.io/created-by";
    public static final String COMPUTE = "compute";

    private final KubernetesClient client;

    public LauncherPodIdentities(KubernetesClient client) {
        this.client = client;
    }

    /** The launcher pod of VMI {@code namespace/vm}, while it runs (empty: no such pod, or not yet running). */
    public Optional<PodIdentity> of(String namespace, String vm) {
        GenericKubernetesResource vmi = client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace).withName(vm).get();
        if (vmi == null || vmi.getMetadata().getUid() == null) {
            return Optional.empty();
        }
        Object status = vmi.getAdditionalProperties().get("status");
        Object node = status instanceof Map<?, ?> m ? m.get("nodeName") : null;
        List<Pod> pods = client.pods().inNamespace(namespace).withLabel(CREATED_BY, vmi.getMetadata().getUid()).list().getItems();
        for (Pod pod : pods) {
            if (pod.getMetadata().getDeletionTimestamp() != null || pod.getStatus() == null || !"Running".equals(pod.getStatus().getPhase())
                    || (node != null && pod.getSpec() != null && !node.toString().equals(pod.getSpec().getNodeName()))) {
                continue;
            }
            for (ContainerStatus c : pod.getStatus().getContainerStatuses() == null ? List.<ContainerStatus>of() : pod.getStatus().getContainerStatuses()) {
                if (COMPUTE.equals(c.getName()) && c.getContainerID() != null) {
                    return Optional.of(new PodIdentity(pod.getMetadata().getUid(), c.getContainerID()));
                }
            }
        }
        return Optional.empty();
    }

    /**
     * Names the launcher pods of {@code vms} (VM name → node) to the agents of their nodes; a VM whose pod is not
     * found is left out (a KubeVirt agent then refuses to act on it and says why; an agent of the local runtime
     * starts its VMs itself and needs none).
     */
    public void tell(List<AgentClient> agents, String namespace, Map<String, String> nodeByVm) throws AgentCallException {
        tell(agents, namespace, nodeByVm, running(namespace, nodeByVm.keySet()));
    }

    /** As {@link #tell(List, String, Map)}, with the launcher pods already found ({@link #running}). */
    public void tell(List<AgentClient> agents, String namespace, Map<String, String> nodeByVm, Map<String, PodIdentity> pods)
            throws AgentCallException {
        Map<String, Map<String, PodIdentity>> byNode = new LinkedHashMap<>();
        nodeByVm.forEach((vm, node) -> {
            PodIdentity pod = pods.get(vm);
            if (pod != null) {
                byNode.computeIfAbsent(node, k -> new LinkedHashMap<>()).put(VmNames.onAgent(namespace, vm), pod);
            }
        });
        for (AgentClient agent : agents) {
            Map<String, PodIdentity> onNode = byNode.get(agent.node());
            if (onNode != null) {
                agent.expectPods(onNode);
            }
        }
    }

    /** The running launcher pods of those of {@code vms} that have one, by VM name. */
    public Map<String, PodIdentity> running(String namespace, Collection<String> vms) {
        Map<String, PodIdentity> found = new LinkedHashMap<>();
        vms.forEach(vm -> of(namespace, vm).ifPresent(pod -> found.put(vm, pod)));
        return found;
    }
}
