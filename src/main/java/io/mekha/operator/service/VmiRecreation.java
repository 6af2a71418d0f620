package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.mekha.protocol.CheckpointFailedException;
import java.time.Duration;
import io.mekha.api.v1alpha1.VolumeSnapshotRef;
import java.util.Collection;
import java.util.List;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * Restores on KubeVirt start from new instances: a VMI cannot be told to load a saved state, so
 * each VirtualMachine's template gets the restore annotation ({@link #RESTORE_FROM}, which Mekha's
 * hook turns into {@code -incoming defer}) and a node selector for the node whose agent holds its
 * state, the VM is set to run, and its current instance (crashed, or started afresh by KubeVirt after
 * a crash) is deleted; KubeVirt creates the new one from the template. Once the restore is over,
 * {@link #finish} takes annotation and pin off the templates again, so that a later start of the VM
 * boots normally; running instances keep what they were created with.
 */
public final class VmiRecreation {
    private static final Logger LOG = Logger.getLogger(VmiRecreation.class);
    public static final String RESTORE_FROM = "mekha.io/restore-from";
    /** On the VM while Mekha pins its template to a node: the node selector value it had before ("" for none). */
    public static final String PINNED = "mekha.io/restore-pinned-from";
    static final String HOSTNAME = "kubernetes.io/hostname";
    private static final Duration POLL = Duration.ofMillis(250);

    private final KubernetesClient client;
    private final Duration timeout;

    /** @param timeout how long KubeVirt may take to schedule the new instances */
    public VmiRecreation(KubernetesClient client, Duration timeout) {
        this.client = client;
        this.timeout = timeout;
    }

    /**
     * Recreates the instance of each VM of {@code nodeByVm} (VM names as the agents know them) on its node, carrying
     * the restore annotation for {@code checkpointId}, and waits until each new instance is scheduled there. The VMs'
     * PVC-backed disks are restored first: a new PVC from each of {@code disks} (named after {@code restore}), which
     * the VM's template then names in place of the old claim.
     */
    public void recreate(String namespace, String checkpointId, Map<String, String> nodeByVm, List<VolumeSnapshotRef> disks,
                         String restore) throws CheckpointFailedException, InterruptedException {
        Map<String, String> nodes = new LinkedHashMap<>();
        nodeByVm.forEach((onAgent, node) -> nodes.put(VmNames.inNamespace(namespace, onAgent), node));
        Map<String, String> oldUids = new HashMap<>();
        for (var entry : nodes.entrySet()) {
            String vm = entry.getKey();
            GenericKubernetesResource current = instances(namespace).withName(vm).get();
            oldUids.put(vm, current == null ? null : current.getMetadata().getUid());
            Map<String, String> claims = new LinkedHashMap<>();
            for (VolumeSnapshotRef disk : disks) {
                if (disk.vm.equals(vm)) {
                    claims.put(disk.volume, restoreClaim(namespace, disk, restore));
                }
            }
            try {
                GenericKubernetesResource edited = machines(namespace).withName(vm).edit(r -> prepare(r, checkpointId, entry.getValue(), claims));
                if (edited == null) {
                    throw new CheckpointFailedException("VirtualMachine " + namespace + "/" + vm + " is gone; nothing to restore it into");
                }
                if (current != null) {
                    instances(namespace).withName(vm).delete();
                }
            } catch (KubernetesClientException e) {
                throw new CheckpointFailedException("cannot recreate the instance of VirtualMachine " + namespace + "/" + vm + ": "
                        + e.getMessage(), e);
            }
            LOG.infof("VirtualMachine %s/%s: recreating its instance on node %s to restore checkpoint %s", namespace, vm, entry.getValue(),
                    checkpointId);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, String> waiting = new LinkedHashMap<>(nodes);
        while (!waiting.isEmpty()) {
            for (var it = waiting.entrySet().iterator(); it.hasNext(); ) {
                var entry = it.next();
                GenericKubernetesResource vmi = instances(namespace).withName(entry.getKey()).get();
                if (vmi == null || vmi.getMetadata().getUid().equals(oldUids.get(entry.getKey()))) {
                    continue;
                }
                String node = nodeName(vmi);
                if (node == null) {
                    continue;
                }
                if (!node.equals(entry.getValue())) {
                    throw new CheckpointFailedException("the new instance of VirtualMachine " + namespace + "/" + entry.getKey()
                            + " was scheduled on node " + node + ", not on " + entry.getValue() + " where its checkpoint is");
                }
                it.remove();
            }
            if (waiting.isEmpty()) {
                break;
            }
            if (System.nanoTime() > deadline) {
                throw new CheckpointFailedException("KubeVirt did not schedule new instances of " + waiting.keySet() + " within "
                        + timeout.toSeconds() + " s (kubectl get vmi -n " + namespace + "; kubectl describe vm)");
            }
            Thread.sleep(POLL.toMillis());
        }
    }

    /** Waits (within the recreation's timeout) until each of {@code vms}' new instance has a running launcher pod; those pods. */
    public Map<String, io.mekha.model.PodIdentity> awaitLaunchers(String namespace, Collection<String> vms)
            throws CheckpointFailedException, InterruptedException {
        LauncherPodIdentities pods = new LauncherPodIdentities(client);
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, io.mekha.model.PodIdentity> found;
        while ((found = pods.running(namespace, vms)).size() < vms.size()) {
            if (System.nanoTime() > deadline) {
                throw new CheckpointFailedException("the new instances of " + vms + " have no running virt-launcher pod after "
                        + timeout.toSeconds() + " s (kubectl get pods -n " + namespace + " -l kubevirt.io=virt-launcher)");
            }
            Thread.sleep(POLL.toMillis());
        }
        return found;
    }

    /** Takes the restore annotation and Mekha's node pin off each VM's template again (best effort: logged when it fails). */
    public void finish(String namespace, Collection<String> vmsOnAgents) {
        for (String onAgent : vmsOnAgents) {
            String vm = VmNames.inNamespace(namespace, onAgent);
            try {
                machines(namespace).withName(vm).edit(VmiRecreation::unpin);
            } catch (KubernetesClientException e) {
                LOG.warnf("VirtualMachine %s/%s: could not take the restore annotation off its template: %s", namespace, vm, e.getMessage());
            }
        }
    }

    /**
     * A new PVC holding {@code disk}'s snapshot, shaped like the claim it was taken of (class, access and volume mode,
     * size); the existing one when a previous attempt made it.
     */
    private String restoreClaim(String namespace, VolumeSnapshotRef disk, String restore) throws CheckpointFailedException {
        String name = ("mekha-" + restore + "-" + disk.vm + "-" + disk.volume).toLowerCase().replaceAll("[^a-z0-9.-]", "-");
        name = name.length() > 253 ? name.substring(0, 253) : name;
        if (client.persistentVolumeClaims().inNamespace(namespace).withName(name).get() != null) {
            return name;
        }
        io.fabric8.kubernetes.api.model.PersistentVolumeClaim original = client.persistentVolumeClaims().inNamespace(namespace)
                .withName(disk.claim).get();
        if (original == null) {
            throw new CheckpointFailedException("VM " + disk.vm + ": the claim " + disk.claim + " its volume '" + disk.volume
                    + "' was snapshotted from is gone, and Mekha takes the new claim's class, modes and size from it; recreate it"
                    + " (its content does not matter) or restore the VolumeSnapshot " + disk.snapshot + " by hand");
        }
        try {
            client.persistentVolumeClaims().inNamespace(namespace).resource(new io.fabric8.kubernetes.api.model.PersistentVolumeClaimBuilder()
                    .withNewMetadata().withName(name).withNamespace(namespace)
                    .withLabels(Map.of(DiskSnapshots.CHECKPOINT_LABEL + "-restore", restore)).endMetadata()
                    .withNewSpecLike(original.getSpec()).withVolumeName(null)
                    .withNewDataSource().withApiGroup("snapshot.storage.k8s.io").withKind("VolumeSnapshot").withName(disk.snapshot).endDataSource()
                    .withDataSourceRef(null).endSpec().build()).create();
        } catch (KubernetesClientException e) {
            throw new CheckpointFailedException("VM " + disk.vm + ": cannot make a claim from VolumeSnapshot " + disk.snapshot + ": "
                    + e.getMessage(), e);
        }
        return name;
    }

    private static GenericKubernetesResource prepare(GenericKubernetesResource vm, String checkpointId, String node,
                                                     Map<String, String> claims) {
        Map<String, Object> spec = map(vm.getAdditionalProperties(), "spec");
        Map<String, Object> template = map(spec, "template");
        for (Map<String, Object> volume : DiskSnapshots.volumes(vm)) {
            String claim = claims.get(String.valueOf(volume.get("name")));
            if (claim != null) {
                // the restored claim in place of the old one (a DataVolume's too: its data now comes from the snapshot, and
                // KubeVirt refuses a VM whose dataVolumeTemplates name a volume no longer in its template)
                if (volume.remove("dataVolume") instanceof Map<?, ?> dv && spec.get("dataVolumeTemplates") instanceof List<?> templates) {
                    templates.removeIf(t -> t instanceof Map<?, ?> m && m.get("metadata") instanceof Map<?, ?> meta
                            && String.valueOf(dv.get("name")).equals(String.valueOf(meta.get("name"))));
                }
                volume.put("persistentVolumeClaim", new LinkedHashMap<>(Map.of("claimName", claim)));
            }
        }
        map(map(template, "metadata"), "annotations").put(RESTORE_FROM, checkpointId);
        Map<String, Object> selector = map(map(template, "spec"), "nodeSelector");
        Map<String, String> annotations = vm.getMetadata().getAnnotations() == null ? new HashMap<>()
                : new HashMap<>(vm.getMetadata().getAnnotations());
        annotations.putIfAbsent(PINNED, selector.get(HOSTNAME) == null ? "" : String.valueOf(selector.get(HOSTNAME)));
        vm.getMetadata().setAnnotations(annotations);
        selector.put(HOSTNAME, node);
        if (spec.containsKey("running")) {
            spec.put("running", true);
        } else {
            spec.put("runStrategy", "Always");
        }
        return vm;
    }

    private static GenericKubernetesResource unpin(GenericKubernetesResource vm) {
        Map<String, Object> template = map(map(vm.getAdditionalProperties(), "spec"), "template");
        map(map(template, "metadata"), "annotations").remove(RESTORE_FROM);
        Map<String, String> annotations = vm.getMetadata().getAnnotations();
        if (annotations != null && annotations.containsKey(PINNED)) {
            Map<String, Object> selector = map(map(template, "spec"), "nodeSelector");
            String before = annotations.get(PINNED);
            if (before.isEmpty()) {
                selector.remove(HOSTNAME);
            } else {
                selector.put(HOSTNAME, before);
            }
            Map<String, String> left = new HashMap<>(annotations);
            left.remove(PINNED);
            vm.getMetadata().setAnnotations(left);
        }
        return vm;
    }

    private static String nodeName(GenericKubernetesResource vmi) {
        Object status = vmi.getAdditionalProperties().get("status");
        Object node = status instanceof Map<?, ?> m ? m.get("nodeName") : null;
        return node == null || node.toString().isEmpty() ? null : node.toString();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Map<String, Object> parent, String key) {
        Object child = parent.get(key);
        if (!(child instanceof Map)) {
            child = new LinkedHashMap<String, Object>();
            parent.put(key, child);
        }
        return (Map<String, Object>) child;
    }

    private io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<GenericKubernetesResource, io.fabric8.kubernetes.api.model.GenericKubernetesResourceList,
            io.fabric8.kubernetes.client.dsl.Resource<GenericKubernetesResource>> machines(String namespace) {
        return client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inNamespace(namespace);
    }

    private io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<GenericKubernetesResource, io.fabric8.kubernetes.api.model.GenericKubernetesResourceList,
            io.fabric8.kubernetes.client.dsl.Resource<GenericKubernetesResource>> instances(String namespace) {
        return client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace);
    }
}
