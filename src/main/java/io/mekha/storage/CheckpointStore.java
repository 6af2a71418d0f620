package io.mekha.storage;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Stored checkpoints at one target. Streams are written under a temporary name and made visible
 * by {@link StreamSink#commit()}; a checkpoint is complete only once its manifest is published,
 * which callers do last, after every VM's stream is committed and verified.
 */
public interface CheckpointStore extends Closeable {
    Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

    StorageTarget target();

    /** Where a file is, for people: a path or an s3:// URL. */
    String locate(String vc, String checkpoint, String file);

    /** Starts writing {@code file} of a checkpoint; nothing is visible until {@link StreamSink#commit()}. */
    StreamSink create(String vc, String checkpoint, String file) throws IOException;

    /** Reads a committed file; {@link java.nio.file.NoSuchFileException} when it is not there. */
    InputStream open(String vc, String checkpoint, String file) throws IOException;

    /** Atomically publishes the manifest: the checkpoint is complete at this target from now on. */
    void publishManifest(String vc, String checkpoint, byte[] json) throws IOException;

    Optional<byte[]> readManifest(String vc, String checkpoint) throws IOException;

    /** Every checkpoint of {@code vc} with anything stored here, complete or not. */
    List<String> checkpoints(String vc) throws IOException;

    /** Removes the manifest first (so the checkpoint stops being complete at once), then every file. */
    void delete(String vc, String checkpoint) throws IOException;

    /** A file being written. Closing without {@link #commit()} discards it. */
    interface StreamSink extends Closeable {
        OutputStream stream();

        /** Makes the file durable and visible under its name. */
        void commit() throws IOException;
    }

    static String requireName(String what, String name) {
        if (name == null || !NAME.matcher(name).matches() || name.contains("..")) {
            throw new IllegalArgumentException(what + " '" + name + "' must be letters, digits, '.', '_' or '-' (at most 128)");
        }
        return name;
    }

    static CheckpointStore open(StorageTarget target) {
        target.validate();
        if (target instanceof StorageTarget.Filesystem fs) {
            return new FsCheckpointStore(fs);
        }
        return new S3CheckpointStore((StorageTarget.S3) target);
    }
}
