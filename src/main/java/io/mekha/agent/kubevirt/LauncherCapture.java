package io.mekha.agent.kubevirt;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Takes the state of a VMI's QEMU out of its pod, for level 0 on KubeVirt (docs/kubevirt.md): the
 * agent listens on a unix socket it binds inside the pod ({@link #SOCKET_IN_POD}, handed to QEMU's
 * user), has QEMU migrate to it over Mekha's monitor (QEMU's sandbox forbids {@code exec:};
 * {@code unix:} is allowed) and writes what arrives to {@code sink}. This is the stop-and-copy
 * form: the caller stops the VM first and resumes it after. The live (MTD) form over the same
 * socket is still to come.
 */
public final class LauncherCapture {
    public static final String SOCKET_IN_POD = "/var/run/kubevirt-private/mekha-outgoing.sock";
    /** A local socket: do not let QEMU's default bandwidth cap slow it. */
    private static final long UNCAPPED = 64L << 30;
    private static final int BUFFER = 1 << 20;

    private LauncherCapture() {}

    /** Streams {@code qemu}'s whole state into {@code sink}; returns the bytes written. */
    public static long save(LauncherQemu qemu, QmpClient qmp, OutputStream sink, Duration timeout, Path linkDir)
            throws IOException, QmpException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Path socket = PodPaths.resolve(qemu.processDir().resolve("root"), SOCKET_IN_POD);
        Files.deleteIfExists(socket);
        ExecutorService acceptor = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "capture-" + qemu.domain());
            t.setDaemon(true);
            return t;
        });
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(ShortSocketPath.forBind(socket, linkDir, qemu.domain())));
            ownedByQemu(qemu, socket);
            Future<SocketChannel> accepted = acceptor.submit(server::accept);
            qmp.execute("migrate-set-parameters", JsonNodeFactory.instance.objectNode().put("max-bandwidth", UNCAPPED));
            qmp.execute("migrate", JsonNodeFactory.instance.objectNode().put("uri", "unix:" + SOCKET_IN_POD));
            long written = 0;
            try (SocketChannel channel = accepted.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                ByteBuffer buffer = ByteBuffer.allocate(BUFFER);
                while (channel.read(buffer) >= 0) {
                    buffer.flip();
                    sink.write(buffer.array(), 0, buffer.limit());
                    written += buffer.limit();
                    buffer.clear();
                    if (System.nanoTime() > deadline) {
                        qmp.execute("migrate_cancel");
                        throw new IOException("saving VMI " + qemu.namespace() + "/" + qemu.name() + " took longer than " + timeout);
                    }
                }
            } catch (TimeoutException e) {
                qmp.execute("migrate_cancel");
                throw new IOException("the QEMU of VMI " + qemu.namespace() + "/" + qemu.name() + " did not connect to " + SOCKET_IN_POD
                        + " within " + timeout);
            } catch (ExecutionException e) {
                throw new IOException("accepting QEMU's connection failed: " + e.getCause(), e.getCause());
            }
            MigrationWait.completed(qemu, qmp, deadline, "saving", false);
            return written;
        } finally {
            acceptor.shutdownNow();
            Files.deleteIfExists(socket);
        }
    }


    /** QEMU connects as its own user (uid 107 in KubeVirt's non-root launcher): the socket must be its. */
    private static void ownedByQemu(LauncherQemu qemu, Path socket) throws IOException {
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
