package io.mekha.agent.storage;

import com.github.luben.zstd.ZstdOutputStream;
import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import io.mekha.storage.CheckpointStore;
import io.mekha.storage.StoredStream.Compression;
import io.mekha.storage.StoredStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Moves one VM's state between QEMU and a checkpoint store as a QEMU migration stream, a chunk
 * at a time: QEMU writes into (or reads from) a unix socket the agent holds, and the agent
 * compresses, checksums and writes the bytes as they come. No step holds the whole state in
 * memory: a paused shadow's RAM is the only full copy.
 */
public final class VmStateStreams {
    private static final int CHUNK = 1 << 20;
    private static final int ZSTD_LEVEL = 3;
    private static final AtomicLong SEQ = new AtomicLong();

    private final Path socketDir;
    private final TransferMeter meter;

    /** @param socketDir where the per-transfer unix sockets go (a short path: unix socket paths end at 108 bytes) */
    public VmStateStreams(Path socketDir) {
        this(socketDir, TransferMeter.NONE);
    }

    private VmStateStreams(Path socketDir, TransferMeter meter) {
        this.socketDir = socketDir;
        this.meter = meter;
    }

    /** The same streams, counting what they move (and read back) into {@code meter}: one VM's transfer, followed from outside. */
    public VmStateStreams metered(TransferMeter meter) {
        return new VmStateStreams(socketDir, meter);
    }

    /**
     * Saves a paused, loaded shadow's state into {@code store} as {@code file}: committed and
     * read back to check its checksum before this returns. The shadow stays paused and can
     * still be restarted ({@code cont}) afterwards.
     *
     * @param timeout the target's write timeout: a save that takes longer fails and leaves nothing behind
     */
    public StoredStream save(QemuVm shadow, CheckpointStore store, String vc, String checkpoint, Compression compression,
                             Duration timeout) throws StoredStateException, InterruptedException {
        String file = StoredStream.fileName(shadow.name(), compression.text());
        String where = store.locate(vc, checkpoint, file);
        long deadline = System.nanoTime() + timeout.toNanos();
        meter.stage("saving to " + where, -1);
        Path socket = socketDir.resolve("save-" + SEQ.incrementAndGet() + ".sock");
        long raw = 0;
        StreamDigest digest;
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            Files.createDirectories(socketDir);
            Files.deleteIfExists(socket);
            server.bind(UnixDomainSocketAddress.of(socket));
            QmpClient qmp = shadow.qmp();
            io.mekha.agent.qemu.MigrationCapabilities.plainOutgoingMigration(shadow);
            qmp.execute("migrate", QmpClient.args().put("uri", "unix:" + socket));
            meter.estimate(() -> ramSent(shadow));
            try (SocketChannel from = acceptWithin(server, Duration.ofSeconds(30), shadow);
                 CheckpointStore.StreamSink sink = store.create(vc, checkpoint, file)) {
                digest = new StreamDigest(sink.stream());
                try (OutputStream out = compression == Compression.ZSTD ? new ZstdOutputStream(digest, ZSTD_LEVEL) : new Unclosed(digest)) {
                    raw = pump(Channels.newInputStream(from), out, deadline, () -> "saving VM '" + shadow.name() + "' to " + where
                            + " exceeded the target's write timeout of " + timeout.toMillis() + " ms; nothing was published");
                }
                awaitSaved(shadow, deadline);
                sink.commit();
            }
        } catch (QmpException e) {
            cancelMigration(shadow);
            throw new StoredStateException("saving VM '" + shadow.name() + "': its shadow's QEMU refused: " + e.getMessage(), e);
        } catch (IOException e) {
            cancelMigration(shadow);
            throw new StoredStateException("saving VM '" + shadow.name() + "' to " + where + " failed: " + e.getMessage()
                    + "; nothing was published", e);
        } catch (StoredStateException e) {
            cancelMigration(shadow);
            throw e;
        } finally {
            deleteQuietly(socket);
        }
        StoredStream stored = new StoredStream(file, compression.text(), digest.count, raw, digest.hex());
        verify(store, vc, checkpoint, stored, shadow.name());
        return stored;
    }

    /**
     * Saves a migration stream the agent holds (level 0 as a stream, on KubeVirt) into {@code store}: compressed,
     * checksummed, committed and read back, like {@link #save}.
     */
    public StoredStream saveStream(InputStream state, long bytes, String vm, CheckpointStore store, String vc, String checkpoint,
                                   Compression compression, Duration timeout) throws StoredStateException {
        String file = StoredStream.fileName(vm, compression.text());
        String where = store.locate(vc, checkpoint, file);
        long deadline = System.nanoTime() + timeout.toNanos();
        meter.stage("saving to " + where, bytes);
        long raw;
        StreamDigest digest;
        try (CheckpointStore.StreamSink sink = store.create(vc, checkpoint, file)) {
            digest = new StreamDigest(sink.stream());
            try (OutputStream out = compression == Compression.ZSTD ? new ZstdOutputStream(digest, ZSTD_LEVEL) : new Unclosed(digest)) {
                raw = pump(state, out, deadline, () -> "saving VM '" + vm + "' to " + where + " exceeded the target's write timeout of "
                        + timeout.toMillis() + " ms; nothing was published");
            }
            sink.commit();
        } catch (IOException e) {
            throw new StoredStateException("saving VM '" + vm + "' to " + where + " failed: " + e.getMessage() + "; nothing was published", e);
        }
        StoredStream stored = new StoredStream(file, compression.text(), digest.count, raw, digest.hex());
        verify(store, vc, checkpoint, stored, vm);
        return stored;
    }

    /** Saves a local file (a VM's disk image at the cut) into {@code store} as {@code name}, uncompressed; read back and checked. */
    public StoredStream saveFile(Path file, CheckpointStore store, String vc, String checkpoint, String name, String vm, Duration timeout)
            throws StoredStateException {
        String where = store.locate(vc, checkpoint, name);
        long deadline = System.nanoTime() + timeout.toNanos();
        StreamDigest digest;
        try {
            meter.stage("saving the disk to " + where, Files.size(file));
        } catch (IOException e) {
            meter.stage("saving the disk to " + where, -1);
        }
        try (InputStream in = Files.newInputStream(file); CheckpointStore.StreamSink sink = store.create(vc, checkpoint, name)) {
            digest = new StreamDigest(sink.stream());
            pump(in, digest, deadline, () -> "saving the disk of VM '" + vm + "' to " + where + " exceeded the target's write timeout of "
                    + timeout.toMillis() + " ms; nothing was published");
            sink.commit();
        } catch (IOException e) {
            throw new StoredStateException("saving the disk of VM '" + vm + "' to " + where + " failed: " + e.getMessage()
                    + "; nothing was published", e);
        }
        StoredStream stored = new StoredStream(name, Compression.NONE.text(), digest.count, digest.count, digest.hex());
        verify(store, vc, checkpoint, stored, vm);
        return stored;
    }

    /** Copies a stored stream from one store to another, checking the source's checksum on the way; the copy is verified too. */
    public StoredStream copy(CheckpointStore from, CheckpointStore to, String vc, String checkpoint, StoredStream stream, String vm,
                             Duration timeout) throws StoredStateException {
        String where = to.locate(vc, checkpoint, stream.file());
        long deadline = System.nanoTime() + timeout.toNanos();
        meter.stage("copying to " + where, stream.bytes());
        try (InputStream in = from.open(vc, checkpoint, stream.file());
             CheckpointStore.StreamSink sink = to.create(vc, checkpoint, stream.file())) {
            StreamDigest digest = new StreamDigest(sink.stream());
            pump(in, digest, deadline, () -> "copying VM '" + vm + "' to " + where + " exceeded the target's write timeout of "
                    + timeout.toMillis() + " ms; nothing was published");
            StreamDigest.check(stream, digest.count, digest.hex(), from.locate(vc, checkpoint, stream.file()), vm);
            sink.commit();
        } catch (NoSuchFileException e) {
            throw new StoredStateException("VM '" + vm + "': " + from.locate(vc, checkpoint, stream.file()) + " is missing");
        } catch (IOException e) {
            throw new StoredStateException("copying VM '" + vm + "' to " + where + " failed: " + e.getMessage() + "; nothing was published", e);
        }
        verify(to, vc, checkpoint, stream, vm);
        return stream;
    }

    /** Reads a stored stream whole and checks its size and SHA-256 against the manifest's. */
    public void verify(CheckpointStore store, String vc, String checkpoint, StoredStream stream, String vm) throws StoredStateException {
        String where = store.locate(vc, checkpoint, stream.file());
        meter.stage("verifying " + stream.file() + " at " + where, stream.bytes());
        try (InputStream in = store.open(vc, checkpoint, stream.file())) {
            StreamDigest digest = new StreamDigest(OutputStream.nullOutputStream());
            meter.counting(in).transferTo(digest);
            StreamDigest.check(stream, digest.count, digest.hex(), where, vm);
        } catch (NoSuchFileException e) {
            throw new StoredStateException("VM '" + vm + "': " + where + " is missing");
        } catch (IOException e) {
            throw new StoredStateException("VM '" + vm + "': cannot read " + where + ": " + e.getMessage(), e);
        }
    }

    /**
     * Copies a stored stream to a local file, checking it on the way (for a restart from remote
     * storage: the state is checked whole before any QEMU starts, then fed from local disk).
     */
    public void stage(CheckpointStore store, String vc, String checkpoint, StoredStream stream, String vm, Path local)
            throws StoredStateException {
        String where = store.locate(vc, checkpoint, stream.file());
        meter.stage("fetching " + stream.file() + " from " + where, stream.bytes());
        try (InputStream in = store.open(vc, checkpoint, stream.file())) {
            Files.createDirectories(local.getParent());
            try (OutputStream file = Files.newOutputStream(local)) {
                StreamDigest digest = new StreamDigest(file);
                meter.counting(in).transferTo(digest);
                StreamDigest.check(stream, digest.count, digest.hex(), where, vm);
            }
        } catch (NoSuchFileException e) {
            deleteQuietly(local);
            throw new StoredStateException("VM '" + vm + "': " + where + " is missing");
        } catch (IOException e) {
            deleteQuietly(local);
            throw new StoredStateException("VM '" + vm + "': cannot fetch " + where + ": " + e.getMessage(), e);
        } catch (StoredStateException e) {
            deleteQuietly(local);
            throw e;
        }
    }

    // ---------------------------------------------------------------- helpers

    /** The fraction of a shadow's RAM its outgoing migration has sent (QEMU's count), for a save whose size is not known before. */
    private static double ramSent(QemuVm shadow) {
        try {
            MigrationStatus status = MigrationStatus.parse(shadow.qmp().execute("query-migrate", QmpClient.args(), Duration.ofSeconds(2)));
            return status.totalBytes() <= 0 ? Double.NaN : 1 - (double) status.remainingBytes() / status.totalBytes();
        } catch (QmpException e) {
            return Double.NaN;
        }
    }

    /** Copies {@code in} to {@code out} a chunk at a time; fails with {@code late}'s message once past {@code deadline}. */
    private long pump(InputStream in, OutputStream out, long deadline, java.util.function.Supplier<String> late)
            throws IOException, StoredStateException {
        byte[] buffer = new byte[CHUNK];
        long total = 0;
        int n;
        while ((n = in.read(buffer)) > 0) {
            out.write(buffer, 0, n);
            total += n;
            meter.add(n);
            if (System.nanoTime() > deadline) {
                throw new StoredStateException(late.get());
            }
        }
        return total;
    }

    private static void awaitSaved(QemuVm shadow, long deadline) throws QmpException, StoredStateException, InterruptedException {
        while (true) {
            MigrationStatus status = MigrationStatus.parse(shadow.qmp().execute("query-migrate"));
            if (status.completed()) {
                return;
            }
            if (status.failed()) {
                throw new StoredStateException("saving VM '" + shadow.name() + "': QEMU's migration " + status.status()
                        + (status.errorDescription() == null ? "" : ": " + status.errorDescription()));
            }
            if (System.nanoTime() > deadline) {
                throw new StoredStateException("saving VM '" + shadow.name() + "': QEMU did not report the save complete in time");
            }
            Thread.sleep(10);
        }
    }

    private static void cancelMigration(QemuVm shadow) {
        try {
            if (shadow.isAlive()) {
                shadow.qmp().execute("migrate_cancel");
            }
        } catch (QmpException ignored) {
            // the shadow is gone or not migrating: nothing to cancel
        }
    }

    private static SocketChannel acceptWithin(ServerSocketChannel server, Duration limit, QemuVm shadow) throws IOException {
        CompletableFuture<Void> closer = CompletableFuture.runAsync(() -> {
            try {
                server.close();
            } catch (IOException ignored) {
                // closing only to break the accept
            }
        }, CompletableFuture.delayedExecutor(limit.toMillis(), TimeUnit.MILLISECONDS));
        try {
            return server.accept();
        } catch (IOException e) {
            throw new IOException("QEMU of VM '" + shadow.name() + "' did not connect to save its state within " + limit.toSeconds() + " s", e);
        } finally {
            closer.cancel(false);
        }
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // a leftover socket or staging file is harmless and replaced next time
        }
    }

    /** Passes writes on; closing only flushes (the sink is committed or discarded by its owner). */
    private static final class Unclosed extends FilterOutputStream {
        Unclosed(OutputStream out) {
            super(out);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
        }

        @Override
        public void close() throws IOException {
            out.flush();
        }
    }
}
