package io.mekha.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.generator.annotation.Required;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** Checkpoints of a virtual cluster on a cron schedule, with retention. */
@Group(MekhaApi.GROUP)
@Version(MekhaApi.VERSION)
@ShortNames({"vccs", "vcschedule"})
@AdditionalPrinterColumn(name = "Schedule", jsonPath = ".spec.schedule", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Suspend", jsonPath = ".spec.suspend", type = AdditionalPrinterColumn.Type.BOOLEAN)
@AdditionalPrinterColumn(name = "Last", jsonPath = ".status.lastScheduleTime", type = AdditionalPrinterColumn.Type.DATE)
@AdditionalPrinterColumn(name = "Next", jsonPath = ".status.nextScheduleTime", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "LastGood", jsonPath = ".status.lastSuccessfulCheckpoint", type = AdditionalPrinterColumn.Type.STRING)
public class VirtualClusterCheckpointSchedule
        extends CustomResource<VirtualClusterCheckpointScheduleSpec, VirtualClusterCheckpointScheduleStatus> implements Namespaced {

    @Override
    protected VirtualClusterCheckpointScheduleStatus initStatus() {
        return new VirtualClusterCheckpointScheduleStatus();
    }

    /** Required; unlike a checkpoint's, a schedule's spec may be edited (the next run uses it). */
    @Override
    @Required
    public VirtualClusterCheckpointScheduleSpec getSpec() {
        return super.getSpec();
    }
}
