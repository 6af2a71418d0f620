package io.mekha.operator.run;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.KubeDuration;
import io.mekha.api.v1alpha1.Level2Target;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.StorageSpec;
import io.mekha.api.v1alpha1.TimePolicyName;
import io.mekha.api.v1alpha1.TransferModeName;
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
            throw new Refusal(Reasons.INVALID_SPEC, "spec.storage.levels includes L2: set spec.storage.level2 (a path or an s3 bucket)");
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

    /** The level-2 target, with S3 credentials read from the named Secret of {@code namespace}; null when none is set. */
    public static StorageTarget level2(KubernetesClient client, String namespace, StorageSpec storage) throws Refusal {
        if (storage == null || storage.level2 == null) {
            return null;
        }
        Level2Target t = storage.level2;
        if ((t.path == null) == (t.s3 == null)) {
            throw new Refusal(Reasons.INVALID_SPEC, "set exactly one of spec.storage.level2.path and spec.storage.level2.s3");
        }
        StorageTarget target;
        if (t.path != null) {
            target = new StorageTarget.Filesystem(Path.of(t.path));
        } else {
            String key = null;
            String secret = null;
            if (t.s3.credentialsSecret != null) {
                Secret s = client.secrets().inNamespace(namespace).withName(t.s3.credentialsSecret).get();
                if (s == null) {
                    throw new Refusal(Reasons.CREDENTIALS_NOT_FOUND, "Secret " + namespace + "/" + t.s3.credentialsSecret
                            + " named in spec.storage.level2.s3.credentialsSecret does not exist");
                }
                key = secretValue(s, "AWS_ACCESS_KEY_ID");
                secret = secretValue(s, "AWS_SECRET_ACCESS_KEY");
            }
            target = new StorageTarget.S3(t.s3.endpoint == null ? null : URI.create(t.s3.endpoint),
                    t.s3.region == null ? "us-east-1" : t.s3.region, t.s3.bucket, t.s3.prefix, key, secret, Boolean.TRUE.equals(t.s3.pathStyle));
        }
        try {
            target.validate();
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reasons.INVALID_SPEC, "spec.storage.level2: " + e.getMessage());
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
