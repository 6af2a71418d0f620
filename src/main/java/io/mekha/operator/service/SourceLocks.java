package io.mekha.operator.service;

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

    /** Claims {@code vms} for {@code holder} (such as {@code VirtualClusterCheckpoint/cp1}); returns the holder of a VM that is taken. */
    public synchronized Optional<String> claim(String namespace, Collection<String> vms, String holder) {
        for (String vm : vms) {
            String owner = held.get(namespace + "/" + vm);
            if (owner != null && !owner.equals(holder)) {
                return Optional.of(owner + " (VM " + vm + ")");
            }
            Optional<String> inCluster = heldInCluster(namespace, vm, holder);
            if (inCluster.isPresent()) {
                return inCluster;
            }
        }
        vms.forEach(vm -> held.put(namespace + "/" + vm, holder));
        return Optional.empty();
    }

    public synchronized void release(String namespace, String holder) {
        held.entrySet().removeIf(e -> e.getKey().startsWith(namespace + "/") && e.getValue().equals(holder));
    }

    private Optional<String> heldInCluster(String namespace, String vm, String holder) {
        for (VirtualClusterCheckpoint cp : client.resources(VirtualClusterCheckpoint.class).inNamespace(namespace).list().getItems()) {
            String name = "VirtualClusterCheckpoint/" + cp.getMetadata().getName();
            if (!name.equals(holder) && cp.getStatus() != null && cp.getStatus().phase == Phase.InProgress
                    && cp.getStatus().vms.stream().anyMatch(v -> vm.equals(v.name))) {
                return Optional.of(name + " (VM " + vm + ")");
            }
        }
        for (VirtualClusterRestore r : client.resources(VirtualClusterRestore.class).inNamespace(namespace).list().getItems()) {
            String name = "VirtualClusterRestore/" + r.getMetadata().getName();
            if (!name.equals(holder) && r.getStatus() != null && r.getStatus().phase == Phase.InProgress
                    && r.getStatus().vms.stream().anyMatch(v -> vm.equals(v.name))) {
                return Optional.of(name + " (VM " + vm + ")");
            }
        }
        return Optional.empty();
    }
}
