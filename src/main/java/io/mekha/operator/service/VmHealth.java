package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.KubeDuration;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Whether a VM of a checkpointed virtual cluster still runs the state that checkpoint continues: read from the API
 * server, as KubeVirt and the node controller report it. A VM has failed when its VirtualMachineInstance is gone or
 * Failed, when its launcher pod is gone, when its node is gone or NotReady for longer than the grace period, or when
 * KubeVirt started it again from boot after the cut (an instance created after the cut that no Mekha restore made).
 */
public final class VmHealth {

    /** The verdict on one VM: failed (with what, for people), healthy, or to be looked at again after {@code recheckIn}. */
    public record Verdict(String failure, Duration recheckIn) {
        public static final Verdict HEALTHY = new Verdict(null, null);

        public boolean failed() {
            return failure != null;
        }
    }

    private final KubernetesClient client;

    public VmHealth(KubernetesClient client) {
        this.client = client;
    }

    /** The verdict on VM {@code vm} of {@code namespace}, checkpointed at {@code cut}. */
    public Verdict check(String namespace, String vm, Instant cut, Duration nodeGrace, Instant now) {
        GenericKubernetesResource vmi = client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace).withName(vm).get();
        if (vmi == null) {
            return failed("VirtualMachineInstance " + namespace + "/" + vm + " is gone");
        }
        Map<String, Object> status = status(vmi);
        String phase = String.valueOf(status.getOrDefault("phase", ""));
        if ("Failed".equals(phase) || "Succeeded".equals(phase)) {
            return failed("VirtualMachineInstance " + namespace + "/" + vm + " is " + phase + (status.get("reason") == null ? ""
                    : " (" + status.get("reason") + ")"));
        }
        Map<String, String> annotations = vmi.getMetadata().getAnnotations() == null ? Map.of() : vmi.getMetadata().getAnnotations();
        String created = vmi.getMetadata().getCreationTimestamp();
        // creation times have whole seconds: an instance is newer than the cut only from the second after it
        if (created != null && !annotations.containsKey(VmiRecreation.RESTORE_FROM)
                && Instant.parse(created).isAfter(cut.truncatedTo(java.time.temporal.ChronoUnit.SECONDS))) {
            return failed("VirtualMachineInstance " + namespace + "/" + vm + " was started again from boot at " + created
                    + ", after the cut at " + cut + ": its state since the cut is lost");
        }
        if (!"Running".equals(phase)) {
            // Pending, Scheduling, Scheduled: an instance from before the cut that does not run is starting (or paused by
            // Mekha's own restore, which holds the VM): not a failure until it fails
            return Verdict.HEALTHY;
        }
        List<Pod> pods = client.pods().inNamespace(namespace).withLabel(LauncherPodIdentities.CREATED_BY, vmi.getMetadata().getUid())
                .list().getItems();
        boolean podRuns = pods.stream().anyMatch(p -> p.getMetadata().getDeletionTimestamp() == null && (p.getStatus() == null
                || p.getStatus().getPhase() == null || "Running".equals(p.getStatus().getPhase()) || "Pending".equals(p.getStatus().getPhase())));
        if (!podRuns) {
            return failed("the launcher pod of VirtualMachineInstance " + namespace + "/" + vm + " is gone" + (pods.isEmpty() ? ""
                    : " (" + pods.get(0).getMetadata().getName() + " " + (pods.get(0).getMetadata().getDeletionTimestamp() != null ? "terminating"
                    : pods.get(0).getStatus().getPhase()) + ")"));
        }
        Object nodeName = status.get("nodeName");
        if (nodeName == null) {
            return Verdict.HEALTHY;
        }
        Node node = client.nodes().withName(nodeName.toString()).get();
        if (node == null) {
            return failed("node " + nodeName + " of VM " + namespace + "/" + vm + " is gone");
        }
        Optional<NodeCondition> ready = node.getStatus() == null || node.getStatus().getConditions() == null ? Optional.empty()
                : node.getStatus().getConditions().stream().filter(c -> "Ready".equals(c.getType())).findFirst();
        if (ready.isEmpty() || "True".equals(ready.get().getStatus())) {
            return Verdict.HEALTHY;
        }
        Instant since = ready.get().getLastTransitionTime() == null ? now : Instant.parse(ready.get().getLastTransitionTime());
        Duration notReady = Duration.between(since, now);
        if (notReady.compareTo(nodeGrace) < 0) {
            return new Verdict(null, nodeGrace.minus(notReady));
        }
        return failed("node " + nodeName + " of VM " + namespace + "/" + vm + " is NotReady (" + ready.get().getStatus()
                + (ready.get().getReason() == null ? "" : ", " + ready.get().getReason()) + ") since " + since + ", "
                + KubeDuration.format(notReady) + " ago, past the grace period of "
                + nodeGrace.toString().substring(2).toLowerCase(java.util.Locale.ROOT) + " (spec.recovery.nodeGracePeriod)");
    }

    private static Verdict failed(String what) {
        return new Verdict(what, null);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> status(GenericKubernetesResource r) {
        Object status = r.getAdditionalProperties().get("status");
        return status instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    }
}
