package io.mekha.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** A restart of a virtual cluster from one of its checkpoints, every VM resuming together. */
@Group(MekhaApi.GROUP)
@Version(MekhaApi.VERSION)
@ShortNames({"vcrestore"})
@AdditionalPrinterColumn(name = "Checkpoint", jsonPath = ".spec.checkpointName", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "From", jsonPath = ".status.restoredFrom", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "ResumeSkew", jsonPath = ".status.resumeSkew", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class VirtualClusterRestore extends CustomResource<VirtualClusterRestoreSpec, VirtualClusterRestoreStatus> implements Namespaced {

    @Override
    protected VirtualClusterRestoreStatus initStatus() {
        return new VirtualClusterRestoreStatus();
    }

    /** Required; never changed once written (the API server refuses an update). */
    @Override
    @Required
    @ValidationRule(value = MekhaApi.IMMUTABLE_RULE, message = "spec is immutable: create a new restore instead of editing this one")
    public VirtualClusterRestoreSpec getSpec() {
        return super.getSpec();
    }
}
