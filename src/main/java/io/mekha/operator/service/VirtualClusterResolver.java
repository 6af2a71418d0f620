package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Turns a checkpoint's VM selection into the VMs and their nodes: VirtualMachines of the
 * checkpoint's own namespace, each with a running VirtualMachineInstance placed on a node.
 */
public final class VirtualClusterResolver {

    /** A VM of the virtual cluster and the node its instance runs on. */
    public record Member(String vm, String node) {}

    private final KubernetesClient client;

    public VirtualClusterResolver(KubernetesClient client) {
        this.client = client;
    }

    public List<Member> resolve(String namespace, VirtualClusterCheckpointSpec spec) throws Refusal {
        if (spec == null || (spec.selector == null) == (spec.vms == null)) {
            throw new Refusal(Reasons.INVALID_SPEC, "set exactly one of spec.selector (VirtualMachines by label) and spec.vms (by name)");
        }
        List<String> names = spec.vms != null ? byName(namespace, spec.vms) : bySelector(namespace, spec.selector);
        List<Member> members = new ArrayList<>();
        for (String vm : names) {
            GenericKubernetesResource vmi = client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace).withName(vm).get();
            if (vmi == null) {
                throw new Refusal(Reasons.VIRTUAL_MACHINE_NOT_RUNNING, "VirtualMachine " + namespace + "/" + vm
                        + " has no VirtualMachineInstance: start it (virtctl start " + vm + ") before checkpointing");
            }
            Map<String, Object> status = status(vmi);
            String phase = String.valueOf(status.getOrDefault("phase", ""));
            Object node = status.get("nodeName");
            if (!"Running".equals(phase) || node == null) {
                throw new Refusal(Reasons.VIRTUAL_MACHINE_NOT_RUNNING, "VirtualMachineInstance " + namespace + "/" + vm + " is " +
                        (phase.isEmpty() ? "not yet scheduled" : phase) + (node == null ? " and has no node" : "") + "; only running VMs can be checkpointed");
            }
            members.add(new Member(vm, node.toString()));
        }
        return members;
    }

    private List<String> byName(String namespace, List<String> names) throws Refusal {
        List<String> found = new ArrayList<>();
        for (String name : names) {
            if (found.contains(name)) {
                throw new Refusal(Reasons.INVALID_SPEC, "VirtualMachine '" + name + "' is listed twice in spec.vms");
            }
            if (client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inNamespace(namespace).withName(name).get() == null) {
                List<String> elsewhere = client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inAnyNamespace().list().getItems().stream()
                        .filter(r -> name.equals(r.getMetadata().getName())).map(r -> r.getMetadata().getNamespace()).toList();
                throw new Refusal(elsewhere.isEmpty() ? Reasons.VIRTUAL_MACHINE_NOT_FOUND : Reasons.VIRTUAL_MACHINE_IN_OTHER_NAMESPACE,
                        "no VirtualMachine '" + name + "' in namespace " + namespace
                                + (elsewhere.isEmpty() ? "" : " (there is one in namespace " + String.join(", ", elsewhere)
                                + "; a checkpoint covers VMs of its own namespace only: create it there)"));
            }
            found.add(name);
        }
        return found;
    }

    private List<String> bySelector(String namespace, LabelSelector selector) throws Refusal {
        List<String> names = client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inNamespace(namespace).withLabelSelector(selector)
                .list().getItems().stream().map(r -> r.getMetadata().getName()).sorted().toList();
        if (names.isEmpty()) {
            throw new Refusal(Reasons.NO_VIRTUAL_MACHINES, "spec.selector " + describe(selector) + " matches no VirtualMachine in namespace "
                    + namespace + "; check the labels of your VirtualMachines (kubectl get vm -n " + namespace + " --show-labels)");
        }
        return names;
    }

    private static String describe(LabelSelector selector) {
        List<String> parts = new ArrayList<>();
        if (selector.getMatchLabels() != null) {
            selector.getMatchLabels().forEach((k, v) -> parts.add(k + "=" + v));
        }
        if (selector.getMatchExpressions() != null) {
            selector.getMatchExpressions().forEach(e -> parts.add(e.getKey() + " " + e.getOperator()
                    + (e.getValues() == null ? "" : " (" + String.join(",", e.getValues()) + ")")));
        }
        return parts.stream().collect(Collectors.joining(", ", "{", "}"));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> status(GenericKubernetesResource r) {
        Object status = r.getAdditionalProperties().get("status");
        return status instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    }
}
