package io.mekha.agent.storage;

import io.mekha.storage.StoredStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Counts and hashes (SHA-256) what passes through, and checks the result against what a manifest says. */
final class StreamDigest extends FilterOutputStream {

    private final MessageDigest sha;
    long count;

StreamDigest(OutputStream out) {
        super(out);
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        out.write(b, off, len);
        sha.update(b, off, len);
        count += len;
    }

    @Override
    public void close() throws IOException {
        out.flush();
    }

    String hex() {
        return HexFormat.of().formatHex(sha.digest());
    }

    /** Refuses a stream whose size or SHA-256 is not what the manifest says. */
    static void check(StoredStream expected, long bytes, String sha256, String where, String vm) throws StoredStateException {
        if (bytes != expected.bytes()) {
            throw new StoredStateException("VM '" + vm + "': " + where + " failed the size check: " + bytes + " bytes, the manifest says "
                    + expected.bytes());
        }
        if (!sha256.equals(expected.sha256())) {
            throw new StoredStateException("VM '" + vm + "': " + where + " failed the SHA-256 check: " + sha256 + ", the manifest says "
                    + expected.sha256());
        }
    }
}
