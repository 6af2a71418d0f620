package io.mekha.agent.kubevirt;

import io.mekha.agent.qemu.SocketPlace;
import java.io.IOException;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Sockets between the agent and a virt-launcher QEMU: in the pod's {@code /var/run/kubevirt-private}
 * (an emptyDir QEMU may use), reached by the agent through {@code /proc/<pid>/root} with the pod's
 * own links followed inside the pod ({@link PodPaths}), through a short link where the path passes
 * the 108-byte limit ({@link ShortSocketPath}). A socket the agent binds is handed to QEMU's user
 * (uid 107 in KubeVirt's non-root launcher), so that QEMU may connect to it.
 */
public final class PodSockets implements SocketPlace {
    static final String DIR_IN_POD = "/var/run/kubevirt-private/";

    private final LauncherQemu qemu;
    private final Path linkDir;

    /** @param linkDir a short directory of the agent's own for the links */
    public PodSockets(LauncherQemu qemu, Path linkDir) {
        this.qemu = qemu;
        this.linkDir = linkDir;
    }

    @Override
    public String inQemu(String name) {
        return DIR_IN_POD + name;
    }

    private Path onHost(String name) throws IOException {
        return PodPaths.resolve(qemu.processDir().resolve("root"), inQemu(name));
    }

    @Override
    public Path forAgent(String name) throws IOException {
        return ShortSocketPath.of(onHost(name), linkDir, qemu.domain() + "-" + name);
    }

    @Override
    public ServerSocketChannel listen(String name) throws IOException {
        Path socket = onHost(name);
        Files.deleteIfExists(socket);
        ServerSocketChannel server = SocketPlace.bind(ShortSocketPath.forBind(socket, linkDir, qemu.domain() + "-" + name));
        try {
            ownedByQemu(socket);
        } catch (IOException e) {
            server.close();
            throw e;
        }
        return server;
    }

    @Override
    public void remove(String name) {
        try {
            Files.deleteIfExists(onHost(name));
        } catch (IOException ignored) {
            // the pod is gone, or the socket was never made
        }
    }

    /** QEMU connects as its own user: the socket must be its (the agent is root). */
    private void ownedByQemu(Path socket) throws IOException {
        if (Files.exists(qemu.processDir())) {
            Object uid = Files.getAttribute(qemu.processDir(), "unix:uid");
            Object gid = Files.getAttribute(qemu.processDir(), "unix:gid");
            if (!uid.equals(Files.getAttribute(socket, "unix:uid"))) {
                Files.setAttribute(socket, "unix:uid", uid);
                Files.setAttribute(socket, "unix:gid", gid);
            }
        }
    }
}
