package io.mekha.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.testing.S3Server;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Both store kinds, against a real directory and a real S3-compatible server on loopback. */
@Tag("fast")
class CheckpointStoreTest {
    @TempDir
    Path work;

    @Test
    void filesystemStoreShowsAFileOnlyOnceCommittedAndLeavesNothingWhenAWriteIsAbandoned() throws Exception {
        try (CheckpointStore store = CheckpointStore.open(new StorageTarget.Filesystem(work.resolve("l2")))) {
            behavesAsAStore(store);
            try (CheckpointStore.StreamSink sink = store.create("vc", "cp9", "vm1.vmstate")) {
                sink.stream().write(new byte[1000]);
                // abandoned: never committed
            }
            try (Stream<Path> files = Files.list(work.resolve("l2/vc/cp9"))) {
                assertThat(files).as("an abandoned write leaves no file, partial or not").isEmpty();
            }
        }
    }

    @Test
    void s3StoreRoundTripsMultipartStreamsAndForgetsAbandonedUploads() throws Exception {
        try (S3Server s3 = new S3Server(work.resolve("s3"));
             CheckpointStore store = CheckpointStore.open(s3.bucket("checkpoints", "mekha/prod"))) {
            behavesAsAStore(store);
            try (CheckpointStore.StreamSink sink = store.create("vc", "cp9", "vm1.vmstate")) {
                sink.stream().write(new byte[1000]);
            }
            assertThatThrownBy(() -> store.open("vc", "cp9", "vm1.vmstate")).isInstanceOf(NoSuchFileException.class);
        }
    }

    @Test
    void namesThatCouldEscapeTheTargetAreRefused() {
        try (CheckpointStore store = CheckpointStore.open(new StorageTarget.Filesystem(work))) {
            assertThatThrownBy(() -> store.create("../etc", "cp", "f")).hasMessageContaining("virtual cluster '../etc'");
            assertThatThrownBy(() -> store.create("vc", "cp", "a/b")).hasMessageContaining("file 'a/b'");
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        assertThatThrownBy(() -> CheckpointStore.open(new StorageTarget.Filesystem(Path.of("relative"))))
                .hasMessageContaining("absolute 'path'");
        assertThatThrownBy(() -> new StorageTarget.S3(null, null, "b", null, null, null, true).validate())
                .hasMessageContaining("'region'");
        assertThat(new StorageTarget.S3(null, "r", "b", "p", "AK", "very-secret", true).toString()).doesNotContain("very-secret");
    }

    private static void behavesAsAStore(CheckpointStore store) throws Exception {
        byte[] big = new byte[(S3CheckpointStore.PART_BYTES * 2) + 12345]; // spans three parts
        new Random(7).nextBytes(big);
        try (CheckpointStore.StreamSink sink = store.create("vc", "cp1", "vm1.vmstate")) {
            for (int off = 0; off < big.length; off += 100_000) {
                sink.stream().write(big, off, Math.min(100_000, big.length - off));
            }
            assertThatThrownBy(() -> store.open("vc", "cp1", "vm1.vmstate")).as("invisible before commit")
                    .isInstanceOf(NoSuchFileException.class);
            sink.commit();
        }
        try (InputStream in = store.open("vc", "cp1", "vm1.vmstate")) {
            assertThat(in.readAllBytes()).isEqualTo(big);
        }
        assertThat(store.readManifest("vc", "cp1")).isEmpty();
        store.publishManifest("vc", "cp1", "{\"m\":1}".getBytes(StandardCharsets.UTF_8));
        assertThat(new String(store.readManifest("vc", "cp1").orElseThrow(), StandardCharsets.UTF_8)).isEqualTo("{\"m\":1}");
        store.create("vc", "cp2", "x").close();
        assertThat(store.checkpoints("vc")).contains("cp1");
        store.delete("vc", "cp1");
        assertThat(store.readManifest("vc", "cp1")).isEmpty();
        assertThatThrownBy(() -> store.open("vc", "cp1", "vm1.vmstate")).isInstanceOf(NoSuchFileException.class);
        assertThat(store.checkpoints("vc")).doesNotContain("cp1");
    }
}
