package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * One checkpoint or restore at a time per VM. A claim is held in this process (so two resources
 * reconciled at once cannot both win) and is visible in the cluster as the holder's status
 * (InProgress with the VM listed), so a restarted operator still sees who holds each VM.
 */
public final class SourceLocks {
    private final KubernetesClient client;
    private final Map<String, String> held = new HashMap<>();

    public SourceLocks(KubernetesClient client) {
        this.client = client;
    }

    /** How a resource is named as a holder: {@code VirtualClusterCheckpoint/cp1}. */
    public static String holder(HasMetadata resource) {
        return resource.getKind() + "/" + resource.getMetadata().getName();
    }

    /** Claims {@code vms} for {@code holder} (see {@link #holder}); returns the holder of a VM that is taken. */
    public synchronized Optional<String> claim(String namespace, Collection<String> vms, String holder) {
        for (String vm : vms) {
            String owner = held.get(namespace + "/" + vm);
            if (owner != null && !owner.equals(holder)) {
                return Optional.of(owner + " (VM " + vm + ")");
            }
        }
        Map<String, String> inCluster = heldInCluster(namespace, holder);
        for (String vm : vms) {
            if (inCluster.containsKey(vm)) {
                return Optional.of(inCluster.get(vm) + " (VM " + vm + ")");
            }
        }
        vms.forEach(vm -> held.put(namespace + "/" + vm, holder));
        return Optional.empty();
    }

    public synchronized void release(String namespace, String holder) {
        held.entrySet().removeIf(e -> e.getKey().startsWith(namespace + "/") && e.getValue().equals(holder));
    }

    /** Each VM of {@code namespace} that a checkpoint or restore other than {@code holder} has InProgress, with its holder. */
    private Map<String, String> heldInCluster(String namespace, String holder) {
        Map<String, String> taken = new HashMap<>();
        for (VirtualClusterCheckpoint cp : client.resources(VirtualClusterCheckpoint.class).inNamespace(namespace).list().getItems()) {
            if (!holder(cp).equals(holder) && cp.getStatus() != null && cp.getStatus().phase == Phase.InProgress) {
                cp.getStatus().vms.forEach(v -> taken.put(v.name, holder(cp)));
            }
        }
        for (VirtualClusterRestore r : client.resources(VirtualClusterRestore.class).inNamespace(namespace).list().getItems()) {
            if (!holder(r).equals(holder) && r.getStatus() != null && r.getStatus().phase == Phase.InProgress) {
                r.getStatus().vms.forEach(v -> taken.put(v.name, holder(r)));
            }
        }
        return taken;
    }
}
