package io.mekha.agent.transfer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.jboss.logging.Logger;

/**
 * Sits between a VM's QEMU and its shadow's, and holds back what the shadow says on the
 * migration's return path until {@link #release()}. With the {@code switchover-ack} capability,
 * the source QEMU may not finish a migration of a running VM before the destination acknowledges
 * switchover on the return path; holding that acknowledgement keeps stock QEMU from finishing the
 * live stage by itself (it otherwise does, stopping the VM, whenever a pass finds nothing dirty).
 * Once Mekha has stopped the VM at its cut, the relay lets the return path through and QEMU
 * completes. The migration stream itself (source to shadow) passes untouched.
 */
final class MigrationRelay implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(MigrationRelay.class);

    private final Path listen;
    private final Path shadowSocket;
    private final ServerSocketChannel server;
    private final ByteArrayOutputStream held = new ByteArrayOutputStream();
    private volatile SocketChannel fromSource;
    private volatile SocketChannel toShadow;
    private boolean released;
    /** The shadow ended its side (it loaded everything and closed) before the release: the source hears that end after the held messages. */
    private boolean shadowEnded;
    private volatile boolean closed;

    MigrationRelay(Path listen, Path shadowSocket) throws IOException {
        this.listen = listen;
        this.shadowSocket = shadowSocket;
        Files.deleteIfExists(listen);
        this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(listen));
        Thread acceptor = new Thread(this::run, "migration-relay " + listen.getParent().getFileName());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /** Where the source QEMU migrates to. */
    Path path() {
        return listen;
    }

    private void run() {
        try {
            fromSource = server.accept();
            toShadow = SocketChannel.open(UnixDomainSocketAddress.of(shadowSocket));
            Thread back = new Thread(this::returnPath, "migration-return-path " + listen.getParent().getFileName());
            back.setDaemon(true);
            back.start();
            ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20);
            while (fromSource.read(buffer) >= 0) {
                buffer.flip();
                while (buffer.hasRemaining()) {
                    toShadow.write(buffer);
                }
                buffer.clear();
            }
            toShadow.shutdownOutput();
        } catch (IOException e) {
            breakOff("migration relay", e);
        }
    }

    private void returnPath() {
        ByteBuffer buffer = ByteBuffer.allocate(64 << 10);
        try {
            while (toShadow.read(buffer) >= 0) {
                buffer.flip();
                synchronized (this) {
                    if (released) {
                        write(fromSource, buffer);
                    } else {
                        held.write(buffer.array(), buffer.position(), buffer.remaining());
                    }
                }
                buffer.clear();
            }
            synchronized (this) {
                if (!released) {
                    // a stopped VM switches over without the acknowledgement, so the shadow may load everything, say so
                    // (RP_SHUT) and close before the release: the source must read those messages before the end, or its
                    // return path ends without the shutdown it expects and QEMU fails the migration ("Channel error:
                    // Input/output error", seen in CI when the release came late on a loaded machine)
                    shadowEnded = true;
                    return;
                }
            }
            fromSource.shutdownOutput();
        } catch (IOException e) {
            breakOff("migration return path", e);
        }
    }

    /**
     * One side broke (the shadow died, the source's QEMU went away): both connections are cut, so
     * the other side fails at once instead of blocking on a socket nobody reads. Without this a
     * source QEMU whose shadow was killed wrote into the relay until its buffer filled and its
     * migration hung, with the VM in its live stage and the checkpoint never ending.
     */
    private void breakOff(String what, IOException e) {
        if (!closed) {
            LOG.debugf("%s %s ended: %s", what, listen, e.getMessage());
        }
        for (SocketChannel c : new SocketChannel[] {fromSource, toShadow}) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (IOException ignored) {
                // already gone
            }
        }
    }

    /** Lets the shadow's return-path messages through, the held ones first: QEMU may now complete. */
    synchronized void release() throws IOException {
        if (released) {
            return;
        }
        released = true;
        if (held.size() > 0 && fromSource != null) {
            write(fromSource, ByteBuffer.wrap(held.toByteArray()));
        }
        held.reset();
        if (shadowEnded && fromSource != null) {
            fromSource.shutdownOutput();
        }
    }

    private static void write(SocketChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    @Override
    public void close() {
        closed = true;
        for (java.io.Closeable c : new java.io.Closeable[] {server, fromSource, toShadow}) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (IOException ignored) {
                // closing a relay whose peers are gone
            }
        }
        try {
            Files.deleteIfExists(listen);
        } catch (IOException ignored) {
            // a leftover socket file is replaced next time
        }
    }
}
