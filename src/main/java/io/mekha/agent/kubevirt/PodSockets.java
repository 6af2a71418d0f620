package io.mekha.agent.kubevirt;

import io.mekha.agent.qemu.SocketPlace;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Sockets between the agent and a virt-launcher QEMU: in the pod's {@code /var/run/kubevirt-private}
 * (an emptyDir QEMU may use), reached inside the pod's root ({@link PodRoot}): the directory is opened
 * once inside the pod, the agent binds, removes and chowns entries of that descriptor (never following a
 * link the tenant put there), and connects to QEMU's sockets through descriptors of their own, so no
 * path is walked twice and none can lead onto the host; {@code /proc/self/fd/N/...} also keeps every
 * path under the 108-byte limit. A socket the agent binds is handed to QEMU's user (uid 107 in KubeVirt's
 * non-root launcher), so that QEMU may connect to it.
 */
public final class PodSockets implements SocketPlace, AutoCloseable {
    static final String DIR_IN_POD = "/var/run/kubevirt-private";

    private final LauncherQemu qemu;
    private final PodRoot root;
    private PodRoot.Opened dir;

    public PodSockets(LauncherQemu qemu, PodRoot root) {
        this.qemu = qemu;
        this.root = root;
    }

    @Override
    public String inQemu(String name) {
        return DIR_IN_POD + "/" + name;
    }

    private synchronized PodRoot.Opened dir() throws IOException {
        if (dir == null) {
            dir = root.openDirectory(DIR_IN_POD);
        }
        return dir;
    }

    /** Names the socket through the pod's directory descriptor; prefer {@link #connect}, which never walks a name in the pod. */
    @Override
    public Path forAgent(String name) throws IOException {
        return dir().child(name);
    }

    @Override
    public SocketChannel connect(String name) throws IOException {
        try (PodRoot.Opened socket = root.open(inQemu(name))) {
            return SocketChannel.open(UnixDomainSocketAddress.of(socket.path()));
        }
    }

    @Override
    public ServerSocketChannel listen(String name) throws IOException {
        PodRoot.Opened d = dir();
        d.unlink(name);
        ServerSocketChannel server = SocketPlace.bind(d.child(name)); // bind makes the entry and never follows a link there
        try {
            ownedByQemu(d, name);
        } catch (IOException e) {
            server.close();
            throw e;
        }
        return server;
    }

    @Override
    public void remove(String name) {
        try {
            dir().unlink(name);
        } catch (IOException ignored) {
            // the pod is gone, or the socket was never made
        }
    }

    /** QEMU connects as its own user: the socket must be its (the agent is root). Its owner is read from /proc, not the pod. */
    private void ownedByQemu(PodRoot.Opened d, String name) throws IOException {
        if (Files.exists(qemu.processDir())) {
            int uid = (Integer) Files.getAttribute(qemu.processDir(), "unix:uid");
            int gid = (Integer) Files.getAttribute(qemu.processDir(), "unix:gid");
            if (uid != 0 || gid != 0) {
                d.chown(name, uid, gid);
            }
        }
    }

    @Override
    public synchronized void close() {
        if (dir != null) {
            dir.close();
            dir = null;
        }
    }
}
