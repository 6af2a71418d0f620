package io.mekha.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** One coordinated checkpoint of a virtual cluster: every selected VM at one cut. */
@Group(MekhaApi.GROUP)
@Version(MekhaApi.VERSION)
@ShortNames({"vccp", "vccheckpoint"})
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Stage", jsonPath = ".status.stage", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "ReadyToUse", jsonPath = ".status.readyToUse", type = AdditionalPrinterColumn.Type.BOOLEAN)
@AdditionalPrinterColumn(name = "Levels", jsonPath = ".status.levels", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "MaxPaused", jsonPath = ".status.maxPausedTime", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "SuspendSkew", jsonPath = ".status.suspendSkew", type = AdditionalPrinterColumn.Type.STRING, priority = 1)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class VirtualClusterCheckpoint extends CustomResource<VirtualClusterCheckpointSpec, VirtualClusterCheckpointStatus>
        implements Namespaced {

    @Override
    protected VirtualClusterCheckpointStatus initStatus() {
        return new VirtualClusterCheckpointStatus();
    }

    /** Required; never changed once written (the API server refuses an update). */
    @Override
    @Required
    @ValidationRule(value = MekhaApi.IMMUTABLE_RULE, message = "spec is immutable: create a new checkpoint instead of editing this one (a restore uses what it was taken with)")
    public VirtualClusterCheckpointSpec getSpec() {
        return super.getSpec();
    }
}
