package io.mekha.agent.level0;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Another node's level-0 stream of one VM, handed over by that node's agent and held here in memory (files in the
 * level-0 tmpfs): the partner copy that outlives the VM's own node. Written once, from a body of announced length (the
 * stream, then the VM's pod-only disk at the cut if it has one); then read any number of times, like the VM's own
 * {@link HeldStream}.
 */
public final class ReceivedStream implements HeldState {
    private static final int CHUNK = 1 << 20;

    private final Path file;
    private final Path diskFile;
    private volatile long bytes;
    private volatile boolean whole;
    private volatile boolean withDisk;
    /** Set by {@link #discard}: a body still arriving then leaves nothing behind either. Guarded by {@code this}. */
    private boolean discarded;

    /** @param file where the stream goes; {@code diskFile} where the disk goes (their directory is created) */
    public ReceivedStream(Path file, Path diskFile) {
        this.file = file;
        this.diskFile = diskFile;
    }

    /**
     * Takes exactly {@code streamBytes}, then {@code diskBytes} (0: no disk) from {@code in}; returns the SHA-256 (hex)
     * of everything taken, for the sender to compare with its own. A body that ends early, or says more than it
     * announced, leaves nothing behind; nor does one {@link #discard discarded} while it arrives (the copy dropped
     * meanwhile: this then fails).
     */
    public String receive(InputStream in, long streamBytes, long diskBytes) throws IOException {
        Files.createDirectories(file.getParent());
        MessageDigest sha = sha256();
        try {
            take(in, file, streamBytes, sha);
            if (diskBytes > 0) {
                take(in, diskFile, diskBytes, sha);
            }
            if (in.read() != -1) {
                throw new IOException("the sender sent more than the " + (streamBytes + diskBytes) + " bytes it announced");
            }
            synchronized (this) {
                requireKept();
                bytes = streamBytes;
                withDisk = diskBytes > 0;
                whole = true;
            }
        } catch (IOException e) {
            discard();
            throw e;
        }
        return HexFormat.of().formatHex(sha.digest());
    }

    private void requireKept() throws IOException {
        if (discarded) {
            throw new IOException("the copy was dropped while it arrived");
        }
    }

    /**
     * A new file, unless the copy was discarded: created under the same lock as {@link #discard} deletes, so that a
     * discard either finds the file (and unlinks it: its memory goes when the writer closes it) or prevents it.
     */
    private synchronized OutputStream create(Path to) throws IOException {
        requireKept();
        return Files.newOutputStream(to, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    }

    private void take(InputStream in, Path to, long length, MessageDigest sha) throws IOException {
        try (OutputStream out = create(to)) {
            byte[] buffer = new byte[CHUNK];
            long left = length;
            while (left > 0) {
                int n = in.read(buffer, 0, (int) Math.min(buffer.length, left));
                if (n < 0) {
                    throw new IOException("the sender's body ended after " + (length - left) + " of " + length + " bytes of " + to.getFileName());
                }
                out.write(buffer, 0, n);
                sha.update(buffer, 0, n);
                left -= n;
            }
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        }
    }

    /** Whether the whole stream is here. */
    public boolean whole() {
        return whole;
    }

    @Override
    public InputStream open() throws IOException {
        if (!whole) {
            throw new IOException("the copy " + file.getFileName() + " is not whole");
        }
        return Files.newInputStream(file);
    }

    @Override
    public long bytes() {
        return bytes;
    }

    @Override
    public Path disk() {
        return whole && withDisk ? diskFile : null;
    }

    /** Bytes it takes in memory: the stream and the disk. */
    public long heldBytes() {
        if (!whole) {
            return 0;
        }
        try {
            return bytes + (withDisk ? Files.size(diskFile) : 0);
        } catch (IOException e) {
            return bytes;
        }
    }

    /** Deletes what it holds, and what is still arriving when it is called (never throws). */
    public synchronized void discard() {
        discarded = true;
        whole = false;
        try {
            Files.deleteIfExists(file);
            Files.deleteIfExists(diskFile);
        } catch (IOException ignored) {
            // the level-0 tmpfs goes with the agent's pod
        }
    }
}
