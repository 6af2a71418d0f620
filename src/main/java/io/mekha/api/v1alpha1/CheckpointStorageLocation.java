package io.mekha.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.generator.annotation.Required;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * Where level 2 may go, defined by a cluster admin (cluster-scoped, as Velero's BackupStorageLocation
 * is per installation): a directory every agent has mounted, or an S3-compatible bucket with its
 * credentials. A checkpoint only names one ({@code spec.storage.level2.location}); it can neither
 * point the root agents at a path of its choosing on every node nor at an endpoint of its choosing,
 * and credentials never come from the tenant's namespace or the agents' own identity.
 */
@Group(MekhaApi.GROUP)
@Version(MekhaApi.VERSION)
@ShortNames({"vcstorage"})
@AdditionalPrinterColumn(name = "Path", jsonPath = ".spec.path", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Bucket", jsonPath = ".spec.s3.bucket", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class CheckpointStorageLocation extends CustomResource<CheckpointStorageLocationSpec, Void> {

    /** Required; an admin may edit it (checkpoints already written keep where they went). */
    @Override
    @Required
    public CheckpointStorageLocationSpec getSpec() {
        return super.getSpec();
    }
}
