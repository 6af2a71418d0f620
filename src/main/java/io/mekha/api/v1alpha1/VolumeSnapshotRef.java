package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** A PVC-backed disk of a VM, cut with the VM: the CSI VolumeSnapshot taken while the VC was suspended. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class VolumeSnapshotRef {
    @JsonPropertyDescription("VirtualMachine name.")
    public String vm;
    @JsonPropertyDescription("The VM's volume (spec.template.spec.volumes[].name).")
    public String volume;
    @JsonPropertyDescription("The PersistentVolumeClaim it was taken of.")
    public String claim;
    @JsonPropertyDescription("The VolumeSnapshot (snapshot.storage.k8s.io/v1) in this namespace.")
    public String snapshot;
    @JsonPropertyDescription("The snapshot's point in time, as the CSI driver reported it (RFC 3339).")
    public String creationTime;
}
