package io.mekha.agent.level0;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A partner copy dropped while its body still arrives (its checkpoint deleted, or a remake cancelled) must leave nothing in
 * the level-0 tmpfs: neither the part already written nor a file the rest of the body would create later.
 */
@Tag("fast")
class ReceivedStreamTest {
    private static final int STREAM = 3 << 20;
    private static final int DISK = 1 << 20;

    @TempDir
    Path work;

    @Test
    void aCopyThatArrivesWholeIsHeldAndADiscardLaterLeavesNothing() throws Exception {
        ReceivedStream copy = new ReceivedStream(work.resolve("p/vm1.stream"), work.resolve("p/vm1.disk.qcow2"));
        copy.receive(new Gated(STREAM + DISK, Long.MAX_VALUE), STREAM, DISK);
        assertThat(copy.whole()).isTrue();
        assertThat(copy.heldBytes()).isEqualTo(STREAM + DISK);
        copy.discard();
        assertThat(filesIn(work.resolve("p"))).isEmpty();
    }

    @Test
    void aDiscardWhileTheStreamArrivesLeavesNoStreamAndNoDiskBehindAndTheReceiveFails() throws Exception {
        assertDiscardMidBodyLeavesNothing(STREAM / 2); // in the stream, before the disk's file exists
    }

    @Test
    void aDiscardWhileTheDiskArrivesLeavesNothingBehindAndTheReceiveFails() throws Exception {
        assertDiscardMidBodyLeavesNothing(STREAM + DISK / 2);
    }

    @Test
    void aDiscardAfterTheLastByteButBeforeTheCopyIsWholeFailsTheReceive() throws Exception {
        assertDiscardMidBodyLeavesNothing(STREAM + DISK); // the body is all read; only its end is still to come
    }

    private void assertDiscardMidBodyLeavesNothing(long gateAt) throws Exception {
        ReceivedStream copy = new ReceivedStream(work.resolve("p/vm1.stream"), work.resolve("p/vm1.disk.qcow2"));
        Gated body = new Gated(STREAM + DISK, gateAt);
        CompletableFuture<String> receiving = CompletableFuture.supplyAsync(() -> {
            try {
                return copy.receive(body, STREAM, DISK);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        assertThat(body.reached.await(30, TimeUnit.SECONDS)).as("the body reached byte " + gateAt).isTrue();
        copy.discard();
        body.open.countDown();
        assertThatThrownBy(receiving::join).hasRootCauseInstanceOf(IOException.class)
                .rootCause().hasMessageContaining("dropped while it arrived");
        assertThat(copy.whole()).isFalse();
        assertThat(filesIn(work.resolve("p"))).as("nothing of a dropped copy is left in the level-0 tmpfs").isEmpty();
    }

    private static java.util.List<Path> filesIn(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.toList();
        }
    }

    /** A body of {@code length} zero bytes that stops at byte {@code gateAt} until {@link #open} is counted down. */
    private static final class Gated extends InputStream {
        final CountDownLatch reached = new CountDownLatch(1);
        final CountDownLatch open = new CountDownLatch(1);
        private final long length;
        private final long gateAt;
        private long at;

        Gated(long length, long gateAt) {
            this.length = length;
            this.gateAt = gateAt;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (at == gateAt) {
                reached.countDown();
                try {
                    if (!open.await(30, TimeUnit.SECONDS)) {
                        throw new IOException("the test never let the body go on");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException(e);
                }
            }
            if (at >= length) {
                return -1;
            }
            long stop = at < gateAt ? Math.min(gateAt, length) : length;
            int n = (int) Math.min(len, stop - at);
            java.util.Arrays.fill(b, off, off + n, (byte) 0);
            at += n;
            return n;
        }
    }
}
