package io.mekha.storage;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.model.VmSpec;
import java.time.Instant;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A manifest read from storage is input: its names become directories and files on every node that loads it (the
 * staging file is deleted after the load), so a tampered manifest must be refused before any path is built from it.
 */
@Tag("fast")
class ManifestValidationTest {
    private static final String SHA = "a".repeat(64);

    private static CheckpointManifest.VmEntry vm(String name, String file, String sha) {
        return new CheckpointManifest.VmEntry(name, "node-1", VmSpec.named(name).build(), "tcg", Instant.EPOCH,
                null, new StoredStream(file, "zstd", 10, 20, sha), null);
    }

    private static CheckpointManifest manifest(String vc, String checkpoint, List<CheckpointManifest.VmEntry> vms) {
        return new CheckpointManifest(CheckpointManifest.FORMAT, vc, checkpoint, StorageLevel.L2, "s3://bucket/x", Instant.EPOCH,
                Instant.EPOCH, "MTD", "Virtual", vms, List.of(StorageLevel.L1, StorageLevel.L2));
    }

    private static CheckpointManifest good() {
        return manifest("vc-a", "cp-1", List.of(vm("vm1", "vm1.vmstate.zst", SHA), vm("vm2", "vm2.vmstate.zst", SHA)));
    }

    @Test
    void aManifestAsMekhaWritesItPasses() {
        assertThatCode(() -> good().validate()).doesNotThrowAnyException();
    }

    @Test
    void namesThatWouldLeaveTheCheckpointsDirectoryAreRefusedNamingTheField() {
        expectRefused(m -> manifest("../../etc", m.checkpoint(), m.vms()), "virtualCluster");
        expectRefused(m -> manifest(m.virtualCluster(), "..", m.vms()), "checkpoint");
        expectRefused(m -> manifest(m.virtualCluster(), "a/b", m.vms()), "checkpoint");
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(vm("../vm1", "vm1.vmstate", SHA))), "name");
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(vm("vm1", "../../../../etc/shadow", SHA))), "file");
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(vm("vm1", "/etc/shadow", SHA))), "file");
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(vm("vm1", "..", SHA))), "file");
    }

    @Test
    void checksumsSizesCompressionAndDuplicatesAreChecked() {
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(vm("vm1", "vm1.vmstate", "not-hex"))), "sha256");
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(vm("vm1", "vm1.vmstate", SHA), vm("vm1", "vm1b.vmstate", SHA))),
                "twice");
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(new CheckpointManifest.VmEntry("vm1", "node-1",
                VmSpec.named("vm1").build(), "tcg", Instant.EPOCH, null, new StoredStream("vm1.vmstate", "lz4", 1, 1, SHA), null))),
                "compression");
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(new CheckpointManifest.VmEntry("vm1", "node-1",
                VmSpec.named("vm1").build(), "tcg", Instant.EPOCH, null, new StoredStream("vm1.vmstate", "zstd", -1, 1, SHA), null))),
                "bytes");
        expectRefused(m -> manifest(m.virtualCluster(), m.checkpoint(), List.of(new CheckpointManifest.VmEntry("vm1", "../node",
                VmSpec.named("vm1").build(), "tcg", Instant.EPOCH, null, new StoredStream("vm1.vmstate", "zstd", 1, 1, SHA), null))),
                "node");
    }

    private static void expectRefused(UnaryOperator<CheckpointManifest> tamper, String field) {
        CheckpointManifest bad = tamper.apply(good());
        assertThatThrownBy(bad::validate).as("manifest with a bad %s", field).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(field);
    }
}
