package io.mekha.agent.kubevirt;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.io.InputStream;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Feeds a VM's stored state to the QEMU of a VMI being restored: the hook started that QEMU with
 * {@code -incoming defer}; over Mekha's monitor the agent has it listen for its state on a unix
 * socket in the pod ({@link #SOCKET_IN_POD}, created by QEMU itself, so as its own user: KubeVirt's
 * non-root launcher runs QEMU as uid 107), connects to that socket through the process's root,
 * streams the bytes, and waits until QEMU has loaded them. The VM is then paused at the cut, for
 * the coordinator to resume with the others at Tr.
 */
public final class LauncherIncoming {
    public static final String SOCKET_IN_POD = "/var/run/kubevirt-private/mekha-incoming.sock";
    private static final int BUFFER = 1 << 20;

    private LauncherIncoming() {}

    /** Loads {@code stream} into {@code qemu}; returns the bytes fed. */
    public static long feed(LauncherQemu qemu, QmpClient qmp, InputStream stream, Duration timeout, Path linkDir)
            throws IOException, QmpException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Path socket = PodPaths.resolve(qemu.processDir().resolve("root"), SOCKET_IN_POD);
        Files.deleteIfExists(socket);
        qmp.execute("migrate-incoming", JsonNodeFactory.instance.objectNode().put("uri", "unix:" + SOCKET_IN_POD));
        while (!Files.exists(socket)) {
            if (System.nanoTime() > deadline) {
                throw new IOException("the QEMU of VMI " + qemu.namespace() + "/" + qemu.name() + " did not listen on " + SOCKET_IN_POD
                        + " within " + timeout + " (was it started with -incoming defer? see qemu-hooks/)");
            }
            Thread.sleep(10);
        }
        long fed = 0;
        try (SocketChannel channel = SocketChannel.open(UnixDomainSocketAddress.of(ShortSocketPath.of(socket, linkDir, qemu.domain() + "-in")))) {
            byte[] buffer = new byte[BUFFER];
            int n;
            while ((n = stream.read(buffer)) > 0) {
                ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
                while (chunk.hasRemaining()) {
                    channel.write(chunk);
                }
                fed += n;
            }
        }
        MigrationWait.completed(qemu, qmp, deadline, "loading", true);
        return fed;
    }

}
