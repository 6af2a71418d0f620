package io.mekha.operator.run;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.CheckpointStorageLocation;
import io.mekha.api.v1alpha1.CheckpointStorageLocationSpec;
import io.mekha.api.v1alpha1.KubeDuration;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.StorageLocationS3;
import io.mekha.api.v1alpha1.StorageSpec;
import io.mekha.api.v1alpha1.TimePolicyName;
import io.mekha.api.v1alpha1.TransferModeName;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import io.mekha.operator.service.Refusal;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.FlushPlan;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Reads a checkpoint's spec into the protocol's options and the flush plan; a bad value is a {@link Refusal} saying what to fix. */
public final class CheckpointSettings {
    public static final Duration DEFAULT_DEADLINE = Duration.ofMinutes(5);

    private CheckpointSettings() {}

    /**
     * The spec {@code checkpoint} was taken with: the copy recorded when it started, or its spec when none was
     * recorded and it was not edited since; a restore must use what was written, never a later edit.
     */
    public static VirtualClusterCheckpointSpec takenWith(VirtualClusterCheckpoint checkpoint) throws Refusal {
        var status = checkpoint.getStatus();
        if (status != null && status.takenWith != null) {
            return status.takenWith;
        }
        Long generation = checkpoint.getMetadata().getGeneration();
        if (status != null && generation != null && status.observedGeneration != null && !generation.equals(status.observedGeneration)) {
            throw new Refusal(Reasons.SPEC_CHANGED, "VirtualClusterCheckpoint '" + checkpoint.getMetadata().getName()
                    + "' was edited after it was taken (generation " + generation + ", taken at " + status.observedGeneration
                    + ") and what it was taken with is not recorded: restore from another checkpoint");
        }
        return checkpoint.getSpec();
    }

    public static CheckpointOptions options(VirtualClusterCheckpointSpec spec, List<String> vms) throws Refusal {
        try {
            TransferModeName mode = spec.transferMode == null ? TransferModeName.MTD : spec.transferMode;
            Duration perVm = Duration.ofSeconds(30);
            Duration global = Duration.ofSeconds(60);
            Map<String, Long> limits = new HashMap<>();
            if (spec.liveStage != null) {
                perVm = KubeDuration.parse("spec.liveStage.maxPerVm", spec.liveStage.maxPerVm, perVm);
                global = KubeDuration.parse("spec.liveStage.globalBound", spec.liveStage.globalBound, global);
                if (spec.liveStage.bandwidthPerVm != null) {
                    vms.forEach(vm -> limits.put(vm, spec.liveStage.bandwidthPerVm));
                }
            }
            if (global.compareTo(perVm) < 0) {
                throw new Refusal(Reasons.INVALID_SPEC, "spec.liveStage.globalBound (" + global + ") is shorter than maxPerVm (" + perVm + ")");
            }
            TimePolicyName policy = spec.timePolicy == null ? TimePolicyName.Virtual : spec.timePolicy;
            return CheckpointOptions.defaults().withMode(mode.toMode()).withLiveBounds(perVm, global).withBandwidthLimits(limits)
                    .withTimePolicy(policy.toPolicy());
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reasons.INVALID_SPEC, e.getMessage());
        }
    }

    public static Duration deadline(String text) throws Refusal {
        try {
            return KubeDuration.parse("spec.failureDeadline", text, DEFAULT_DEADLINE);
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reasons.INVALID_SPEC, e.getMessage());
        }
    }

    /** The flush plan, or null when the checkpoint stays in memory only. */
    public static FlushPlan flushPlan(StorageSpec storage, StorageTarget level2) throws Refusal {
        if (storage == null || storage.levels == null || storage.levels.isEmpty()) {
            return null;
        }
        List<StorageLevel> levels = storage.levels.stream().map(LevelName::toLevel).filter(l -> l != StorageLevel.L0).sorted().toList();
        if (levels.isEmpty()) {
            return null;
        }
        if (levels.contains(StorageLevel.L2) && level2 == null) {
            throw new Refusal(Reasons.INVALID_SPEC, "spec.storage.levels includes L2: set spec.storage.level2.location (a CheckpointStorageLocation)");
        }
        try {
            FlushPlan plan = FlushPlan.level1().withLevels(levels, level2)
                    .withCompression(storage.compression == null || storage.compression.equals("none") ? null : storage.compression)
                    .withWriters(1, storage.level2Writers == null ? 1 : storage.level2Writers);
            return Boolean.TRUE.equals(storage.releaseMemoryWhenDurable) ? plan.withLevel0(FlushPlan.Level0Policy.RELEASE_WHEN_DURABLE) : plan;
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reasons.INVALID_SPEC, e.getMessage());
        }
    }

    /**
     * The level-2 target of a checkpoint in {@code namespace}: the CheckpointStorageLocation it names, if that location
     * lets this namespace use it, with S3 credentials from the location's Secret in {@code operatorNamespace}; null when
     * no level 2 is set. A tenant names a location; what it points at and with which keys is the admin's.
     */
    public static StorageTarget level2(KubernetesClient client, String namespace, String operatorNamespace, StorageSpec storage)
            throws Refusal {
        if (storage == null || storage.level2 == null) {
            return null;
        }
        String name = storage.level2.location;
        if (name == null || name.isBlank()) {
            throw new Refusal(Reasons.INVALID_SPEC, "spec.storage.level2.location: name a CheckpointStorageLocation (kubectl get vcstorage"
                    + " lists them; an admin defines them)");
        }
        CheckpointStorageLocation location = client.resources(CheckpointStorageLocation.class).withName(name).get();
        if (location == null || location.getSpec() == null) {
            throw new Refusal(Reasons.STORAGE_LOCATION_NOT_FOUND, "no CheckpointStorageLocation '" + name
                    + "' (spec.storage.level2.location); kubectl get vcstorage lists those an admin defined");
        }
        CheckpointStorageLocationSpec where = location.getSpec();
        if (where.namespaces != null && !where.namespaces.contains(namespace)) {
            throw new Refusal(Reasons.STORAGE_LOCATION_FORBIDDEN, "CheckpointStorageLocation '" + name + "' does not allow namespace "
                    + namespace + " (it allows " + where.namespaces + "); ask an admin, or name another location");
        }
        if ((where.path == null) == (where.s3 == null)) {
            throw new Refusal(Reasons.INVALID_SPEC, "CheckpointStorageLocation '" + name + "' must set exactly one of spec.path and spec.s3");
        }
        StorageTarget target;
        if (where.path != null) {
            target = new StorageTarget.Filesystem(Path.of(where.path));
        } else {
            StorageLocationS3 s3 = where.s3;
            if (s3.credentialsSecret == null) {
                throw new Refusal(Reasons.INVALID_SPEC, "CheckpointStorageLocation '" + name + "': set spec.s3.credentialsSecret (a Secret in "
                        + operatorNamespace + "); the agents never use credentials of their own");
            }
            Secret secret = client.secrets().inNamespace(operatorNamespace).withName(s3.credentialsSecret).get();
            if (secret == null) {
                throw new Refusal(Reasons.CREDENTIALS_NOT_FOUND, "Secret " + operatorNamespace + "/" + s3.credentialsSecret
                        + " named by CheckpointStorageLocation '" + name + "' does not exist");
            }
            Duration timeout;
            try {
                timeout = KubeDuration.parse("spec.s3.timeout", s3.timeout, null);
            } catch (IllegalArgumentException e) {
                throw new Refusal(Reasons.INVALID_SPEC, "CheckpointStorageLocation '" + name + "': " + e.getMessage());
            }
            target = new StorageTarget.S3(s3.endpoint == null ? null : URI.create(s3.endpoint), s3.region == null ? "us-east-1" : s3.region,
                    s3.bucket, s3.prefix, secretValue(secret, "AWS_ACCESS_KEY_ID"), secretValue(secret, "AWS_SECRET_ACCESS_KEY"),
                    Boolean.TRUE.equals(s3.pathStyle), timeout);
        }
        try {
            target.validate();
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reasons.INVALID_SPEC, "CheckpointStorageLocation '" + name + "': " + e.getMessage());
        }
        return target;
    }

    private static String secretValue(Secret s, String key) throws Refusal {
        if (s.getData() != null && s.getData().get(key) != null) {
            return new String(Base64.getDecoder().decode(s.getData().get(key)), StandardCharsets.UTF_8).trim();
        }
        if (s.getStringData() != null && s.getStringData().get(key) != null) {
            return s.getStringData().get(key).trim();
        }
        throw new Refusal(Reasons.CREDENTIALS_NOT_FOUND, "Secret " + s.getMetadata().getName() + " has no key " + key);
    }
}
