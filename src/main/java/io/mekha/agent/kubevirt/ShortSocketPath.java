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

    /** For connecting: {@code socket} itself when short enough, else a link to it in {@code linkDir} named {@code name}. */
    public static Path of(Path socket, Path linkDir, String name) throws IOException {
        return shortened(socket, linkDir, name + ".sock", false);
    }

    /**
     * For binding: {@code bind} does not follow a link at the socket's own name, so the link is to its
     * directory, and the socket is created there through it.
     */
    public static Path forBind(Path socket, Path linkDir, String name) throws IOException {
        return shortened(socket, linkDir, name + "-d", true);
    }

    /** @param toDirectory link the socket's directory (and go through it), not the socket itself */
    private static Path shortened(Path socket, Path linkDir, String linkName, boolean toDirectory) throws IOException {
        if (fits(socket)) {
            return socket;
        }
        Files.createDirectories(linkDir);
        Path link = linkDir.resolve(linkName);
        Path target = toDirectory ? socket.toAbsolutePath().getParent() : socket.toAbsolutePath();
        Path usable = toDirectory ? link.resolve(socket.getFileName()) : link;
        if (!fits(usable)) {
            throw new IOException("even the link directory " + linkDir + " is too deep for a unix socket path (" + LIMIT + " bytes)");
        }
        Files.deleteIfExists(link);
        Files.createSymbolicLink(link, target);
        return usable;
    }

    private static boolean fits(Path p) {
        return p.toString().getBytes(StandardCharsets.UTF_8).length <= LIMIT;
    }
}
