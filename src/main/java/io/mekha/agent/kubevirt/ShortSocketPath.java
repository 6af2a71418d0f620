package io.mekha.agent.kubevirt;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Unix socket paths hold at most 107 bytes; paths into pods ({@code /var/lib/kubelet/pods/<uid>/...}
 * or a deep {@code /proc/<pid>/root/...}) can be longer. A longer path is reached through a short
 * symbolic link (connect follows links), kept in a directory of the agent's own.
 */
public final class ShortSocketPath {
    static final int LIMIT = 107;

    private ShortSocketPath() {}

    /** {@code socket} itself when short enough, else a link to it in {@code linkDir} named {@code name}. */
    public static Path of(Path socket, Path linkDir, String name) throws IOException {
        if (socket.toString().getBytes(StandardCharsets.UTF_8).length <= LIMIT) {
            return socket;
        }
        Files.createDirectories(linkDir);
        Path link = linkDir.resolve(name + ".sock");
        if (link.toString().getBytes(StandardCharsets.UTF_8).length > LIMIT) {
            throw new IOException("even the link directory " + linkDir + " is too deep for a unix socket path (" + LIMIT + " bytes)");
        }
        Files.deleteIfExists(link);
        Files.createSymbolicLink(link, socket.toAbsolutePath());
        return link;
    }
}
