package io.mekha.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.testing.CuttableProxy;
import io.mekha.testing.S3Server;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.MultipartUpload;

/** Both store kinds, against a real directory and a real S3-compatible server on loopback. */
@Tag("fast")
@Tag("faults")
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
    void anS3StoreThatStopsAnsweringMidUploadFailsTheWriteWithinItsTimeoutAndPublishesNothing() throws Exception {
        Duration timeout = Duration.ofSeconds(10); // a healthy 8 MiB part through the proxy on a loaded machine fits well inside it
        try (S3Server s3 = new S3Server(work.resolve("s3")); CuttableProxy proxy = new CuttableProxy(s3.endpoint())) {
            StorageTarget.S3 direct = s3.bucket("checkpoints", "mekha");
            StorageTarget.S3 throughProxy = new StorageTarget.S3(proxy.uri(), direct.region(), direct.bucket(), direct.prefix(),
                    direct.accessKeyId(), direct.secretAccessKey(), true, timeout);
            try (CheckpointStore store = CheckpointStore.open(throughProxy)) {
                CheckpointStore.StreamSink sink = store.create("vc", "cp1", "vm1.vmstate");
                sink.stream().write(new byte[S3CheckpointStore.PART_BYTES]); // the first part is uploaded
                proxy.stall();
                long start = System.nanoTime();
                assertThatThrownBy(() -> {
                    sink.stream().write(new byte[S3CheckpointStore.PART_BYTES]);
                    sink.commit();
                }).isInstanceOf(IOException.class).hasMessageContaining("upload part 2");
                Duration took = Duration.ofNanos(System.nanoTime() - start);
                System.out.println("a stalled S3 upload failed after " + took.toMillis() + " ms (call timeout " + timeout.toMillis() + " ms)");
                // bounded by the call timeout, retries included (slack for a loaded machine; the SDK's defaults took minutes)
                assertThat(took).isLessThan(timeout.plusSeconds(15));
                assertThatThrownBy(sink::close).isInstanceOf(IOException.class).hasMessageContaining("abort");
            }
            proxy.flow();
            try (CheckpointStore store = CheckpointStore.open(direct)) {
                assertThat(store.readManifest("vc", "cp1")).as("no manifest").isEmpty();
                assertThatThrownBy(() -> store.open("vc", "cp1", "vm1.vmstate")).isInstanceOf(NoSuchFileException.class);
                // a later delete of the checkpoint also aborts the upload left open by the cut
                store.delete("vc", "cp1");
                assertThat(store.checkpoints("vc")).isEmpty();
            }
        }
    }

    @Test
    void anUploadThatAnotherPartyAbortedFirstCountsAsAborted() throws Exception {
        // the writer's own abort, delayed by a stalled network, or a lifecycle rule can end an upload between
        // the store's list and its abort: the abort finds nothing (404), and that is what it wanted
        try (S3Server s3 = new S3Server(work.resolve("s3"));
             CheckpointStore store = CheckpointStore.open(s3.bucket("checkpoints", "mekha"));
             S3Client other = s3.client()) {
            CheckpointStore.StreamSink sink = store.create("vc", "cp1", "vm1.vmstate");
            sink.stream().write(new byte[1000]);
            List<MultipartUpload> open = other.listMultipartUploads(b -> b.bucket("checkpoints").prefix("mekha/vc/cp1/")).uploads();
            assertThat(open).hasSize(1);
            MultipartUpload upload = open.get(0);
            other.abortMultipartUpload(b -> b.bucket("checkpoints").key(upload.key()).uploadId(upload.uploadId()));

            sink.close(); // its abort finds the upload gone
            ((S3CheckpointStore) store).abort(upload.key(), upload.uploadId()); // as delete's, after its list
            store.delete("vc", "cp1");
            assertThat(store.checkpoints("vc")).isEmpty();
        }
    }

    @Test
    void timeoutsOutsideTheirBoundsAreRefused() {
        assertThatThrownBy(() -> new StorageTarget.S3(null, "r", "b", null, null, null, true, Duration.ZERO).validate())
                .hasMessageContaining("'timeout' must be above zero");
        assertThat(new StorageTarget.S3(null, "r", "b", null, null, null, true).callTimeout()).isEqualTo(StorageTarget.S3.DEFAULT_TIMEOUT);
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
