package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.UncapturedDisks;
import io.mekha.api.v1alpha1.VolumeSnapshotRef;
import io.mekha.protocol.CheckpointFailedException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The VMs' disks at the cut, on KubeVirt. A PVC-backed disk (persistentVolumeClaim, dataVolume)
 * is cut by a CSI VolumeSnapshot, created while the VC is suspended: QEMU drains and flushes a VM's
 * block I/O when it stops, so the volume holds exactly what the paused guest wrote; the protocol
 * waits for each snapshot's point in time ({@code status.creationTime}) before resuming anyone.
 * One disk per VM living only in the virt-launcher pod (a containerDisk's writable overlay,
 * ephemeral, emptyDisk) is copied by the agent at the cut; a second one is refused, and a hostDisk
 * (a file on one node) is refused or left out as the checkpoint says ({@link UncapturedDisks}).
 */
public final class DiskSnapshots {
    public static final ResourceDefinitionContext SNAPSHOTS = new ResourceDefinitionContext.Builder()
            .withGroup("snapshot.storage.k8s.io").withVersion("v1").withKind("VolumeSnapshot").withPlural("volumesnapshots")
            .withNamespaced(true).build();
    public static final String CHECKPOINT_LABEL = "mekha.io/checkpoint";
    /** Volume kinds whose writable image lives only in the virt-launcher pod: the agent copies one per VM at the cut. */
    static final Set<String> POD_ONLY = Set.of("containerDisk", "ephemeral", "emptyDisk");
    private static final Duration POLL = Duration.ofMillis(100);

    private final KubernetesClient client;

    public DiskSnapshots(KubernetesClient client) {
        this.client = client;
    }

    /** A PVC-backed disk of a VM. */
    public record Disk(String vm, String volume, String claim) {}

    /**
     * The PVC-backed disks of {@code vms}, after checking that the rest can be cut with them: at most one pod-only disk
     * per VM, and no hostDisk unless {@code policy} is Discard. A refusal names the VM, the volume and what to do.
     */
    public List<Disk> disksOf(String namespace, List<String> vms, UncapturedDisks policy) throws Refusal {
        List<Disk> disks = new ArrayList<>();
        for (String vm : vms) {
            GenericKubernetesResource machine = client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inNamespace(namespace)
                    .withName(vm).get();
            List<String> podOnly = new ArrayList<>();
            for (Map<String, Object> volume : volumes(machine)) {
                String name = String.valueOf(volume.get("name"));
                if (volume.get("persistentVolumeClaim") instanceof Map<?, ?> pvc) {
                    disks.add(new Disk(vm, name, String.valueOf(pvc.get("claimName"))));
                } else if (volume.get("dataVolume") instanceof Map<?, ?> dv) {
                    disks.add(new Disk(vm, name, String.valueOf(dv.get("name")))); // CDI's PVC has the DataVolume's name
                } else if (POD_ONLY.stream().anyMatch(volume::containsKey)) {
                    podOnly.add(name);
                } else if (volume.containsKey("hostDisk") && policy != UncapturedDisks.Discard) {
                    throw new Refusal(Reasons.DISK_NOT_CAPTURED, "VirtualMachine " + namespace + "/" + vm + " has volume '" + name
                            + "' (hostDisk), a file on one node that Mekha does not cut with the VM: a restore would find it as it is"
                            + " then, under a guest that remembers it as it was. Use a PersistentVolumeClaim or DataVolume (cut by a CSI"
                            + " snapshot), or set spec.uncapturedDisks: Discard if the guest does not write to it");
                }
            }
            if (podOnly.size() > 1) {
                throw new Refusal(Reasons.DISK_NOT_CAPTURED, "VirtualMachine " + namespace + "/" + vm + " has " + podOnly.size()
                        + " disks that live only in its virt-launcher pod " + podOnly + "; the agent copies one such disk per VM at"
                        + " the cut: keep the others on PersistentVolumeClaims or DataVolumes");
            }
        }
        return disks;
    }

    /**
     * Takes a VolumeSnapshot of each disk (creating only those not there yet: a restarted operator takes them again)
     * and waits until each has its point in time; returns them for the checkpoint's status.
     */
    public List<VolumeSnapshotRef> take(String namespace, String checkpoint, String className, List<Disk> disks, Duration timeout)
            throws CheckpointFailedException, InterruptedException {
        Map<String, Disk> byName = new LinkedHashMap<>();
        for (Disk disk : disks) {
            String name = snapshotName(checkpoint, disk);
            byName.put(name, disk);
            if (snapshots(namespace).withName(name).get() != null) {
                continue;
            }
            Map<String, Object> spec = new LinkedHashMap<>();
            spec.put("source", Map.of("persistentVolumeClaimName", disk.claim()));
            if (className != null) {
                spec.put("volumeSnapshotClassName", className);
            }
            try {
                snapshots(namespace).resource(new GenericKubernetesResourceBuilder().withApiVersion("snapshot.storage.k8s.io/v1")
                        .withKind("VolumeSnapshot").withNewMetadata().withName(name).withNamespace(namespace)
                        .withLabels(Map.of(CHECKPOINT_LABEL, checkpoint)).endMetadata()
                        .withAdditionalProperties(Map.of("spec", spec)).build()).create();
            } catch (KubernetesClientException e) {
                throw new CheckpointFailedException("cannot snapshot volume '" + disk.volume() + "' (PVC " + disk.claim() + ") of VM "
                        + disk.vm() + ": " + e.getMessage() + " (is the CSI snapshot controller installed, and may the operator create"
                        + " VolumeSnapshots?)", e);
            }
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, VolumeSnapshotRef> taken = new LinkedHashMap<>();
        while (taken.size() < byName.size()) {
            for (var entry : byName.entrySet()) {
                if (taken.containsKey(entry.getKey())) {
                    continue;
                }
                GenericKubernetesResource snapshot = snapshots(namespace).withName(entry.getKey()).get();
                Map<?, ?> status = snapshot == null ? null : (Map<?, ?>) snapshot.getAdditionalProperties().get("status");
                Object error = status == null ? null : status.get("error");
                if (error instanceof Map<?, ?> e && e.get("message") != null) {
                    throw new CheckpointFailedException("the snapshot of volume '" + entry.getValue().volume() + "' of VM "
                            + entry.getValue().vm() + " failed: " + e.get("message"));
                }
                if (status != null && status.get("creationTime") != null) {
                    Disk disk = entry.getValue();
                    VolumeSnapshotRef ref = new VolumeSnapshotRef();
                    ref.vm = disk.vm();
                    ref.volume = disk.volume();
                    ref.claim = disk.claim();
                    ref.snapshot = entry.getKey();
                    ref.creationTime = String.valueOf(status.get("creationTime"));
                    taken.put(entry.getKey(), ref);
                }
            }
            if (taken.size() < byName.size()) {
                if (System.nanoTime() > deadline) {
                    List<String> late = byName.keySet().stream().filter(n -> !taken.containsKey(n)).toList();
                    throw new CheckpointFailedException("the CSI driver did not cut " + late + " within " + timeout.toSeconds()
                            + " s while the VMs were paused (kubectl describe volumesnapshot -n " + namespace + ")");
                }
                Thread.sleep(POLL.toMillis());
            }
        }
        return new ArrayList<>(taken.values());
    }

    /** Deletes the VolumeSnapshots Mekha took for {@code checkpoint} (best effort). */
    public void delete(String namespace, String checkpoint) {
        try {
            snapshots(namespace).withLabel(CHECKPOINT_LABEL, checkpoint).delete();
        } catch (KubernetesClientException e) {
            // the CRD may be absent (no CSI snapshot support): then there is nothing to delete
        }
    }

    static String snapshotName(String checkpoint, Disk disk) {
        String name = (checkpoint + "-" + disk.vm() + "-" + disk.volume()).toLowerCase().replaceAll("[^a-z0-9.-]", "-");
        return name.length() > 253 ? name.substring(0, 253) : name;
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> volumes(GenericKubernetesResource machine) {
        if (machine == null) {
            return List.of();
        }
        Object spec = machine.getAdditionalProperties().get("spec");
        Object template = spec instanceof Map<?, ?> m ? m.get("template") : null;
        Object templateSpec = template instanceof Map<?, ?> t ? t.get("spec") : null;
        Object volumes = templateSpec instanceof Map<?, ?> ts ? ts.get("volumes") : null;
        return volumes instanceof List<?> list ? (List<Map<String, Object>>) list : List.of();
    }

    private io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<GenericKubernetesResource, io.fabric8.kubernetes.api.model.GenericKubernetesResourceList,
            io.fabric8.kubernetes.client.dsl.Resource<GenericKubernetesResource>> snapshots(String namespace) {
        return client.genericKubernetesResources(SNAPSHOTS).inNamespace(namespace);
    }
}
