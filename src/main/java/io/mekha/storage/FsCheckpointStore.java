package io.mekha.storage;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Checkpoints in a directory: {@code <root>/<vc>/<checkpoint>/<file>}. A file is written as
 * {@code .<file>.partial}, synced to disk every few MiB (so a slow target never holds a large
 * backlog of dirty pages in host memory), synced again, renamed, and the directory synced.
 */
public final class FsCheckpointStore implements CheckpointStore {
    /** Sync written data at least this often: bounds the dirty page cache a writer builds up. */
    static final long SYNC_EVERY = 8L << 20;

    private final StorageTarget.Filesystem target;

    public FsCheckpointStore(StorageTarget.Filesystem target) {
        this.target = target;
    }

    @Override
    public StorageTarget target() {
        return target;
    }

    @Override
    public String locate(String vc, String checkpoint, String file) {
        return dir(vc, checkpoint).resolve(file).toString();
    }

    Path dir(String vc, String checkpoint) {
        return target.path().resolve(CheckpointStore.requireName("virtual cluster", vc))
                .resolve(CheckpointStore.requireName("checkpoint", checkpoint));
    }

    @Override
    public StreamSink create(String vc, String checkpoint, String file) throws IOException {
        Path dir = dir(vc, checkpoint);
        Files.createDirectories(dir);
        Path finalPath = dir.resolve(CheckpointStore.requireName("file", file));
        Path partial = dir.resolve("." + file + ".partial");
        FileChannel channel = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE);
        return new FileSink(channel, partial, finalPath);
    }

    @Override
    public InputStream open(String vc, String checkpoint, String file) throws IOException {
        return Files.newInputStream(dir(vc, checkpoint).resolve(CheckpointStore.requireName("file", file)));
    }

    @Override
    public void publishManifest(String vc, String checkpoint, byte[] json) throws IOException {
        try (StreamSink sink = create(vc, checkpoint, CheckpointManifest.FILE)) {
            sink.stream().write(json);
            sink.commit();
        }
    }

    @Override
    public Optional<byte[]> readManifest(String vc, String checkpoint) throws IOException {
        try {
            return Optional.of(Files.readAllBytes(dir(vc, checkpoint).resolve(CheckpointManifest.FILE)));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
    }

    @Override
    public List<String> checkpoints(String vc) throws IOException {
        Path dir = target.path().resolve(CheckpointStore.requireName("virtual cluster", vc));
        List<String> names = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return names;
        }
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, Files::isDirectory)) {
            entries.forEach(p -> names.add(p.getFileName().toString()));
        }
        names.sort(null);
        return names;
    }

    @Override
    public void delete(String vc, String checkpoint) throws IOException {
        Path dir = dir(vc, checkpoint);
        if (!Files.isDirectory(dir)) {
            return;
        }
        Files.deleteIfExists(dir.resolve(CheckpointManifest.FILE));
        syncDirectory(dir);
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(f);
            }
        }
        Files.deleteIfExists(dir);
        syncDirectory(dir.getParent());
    }

    @Override
    public void close() {}

    static void syncDirectory(Path dir) throws IOException {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        }
    }

    private static final class FileSink implements StreamSink {
        private final FileChannel channel;
        private final Path partial;
        private final Path finalPath;
        private final OutputStream out;
        private long unsynced;
        private boolean committed;

        FileSink(FileChannel channel, Path partial, Path finalPath) {
            this.channel = channel;
            this.partial = partial;
            this.finalPath = finalPath;
            OutputStream raw = Channels.newOutputStream(channel);
            this.out = new FilterOutputStream(raw) {
                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    channel.write(ByteBuffer.wrap(b, off, len));
                    unsynced += len;
                    if (unsynced >= SYNC_EVERY) {
                        channel.force(false);
                        unsynced = 0;
                    }
                }

                @Override
                public void write(int b) throws IOException {
                    write(new byte[] {(byte) b}, 0, 1);
                }

                @Override
                public void close() {
                    // the sink owns the channel
                }
            };
        }

        @Override
        public OutputStream stream() {
            return out;
        }

        @Override
        public void commit() throws IOException {
            channel.force(true);
            channel.close();
            try {
                Files.move(partial, finalPath, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("cannot rename " + partial + " atomically: " + e.getMessage(), e);
            }
            syncDirectory(finalPath.getParent());
            committed = true;
        }

        @Override
        public void close() throws IOException {
            if (channel.isOpen()) {
                channel.close();
            }
            if (!committed) {
                Files.deleteIfExists(partial);
            }
        }
    }
}
