package io.mekha.agent.level0;

import io.mekha.agent.qemu.QemuVm;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * Level 0 as the migration stream itself, held by the agent in a file of its level-0 directory
 * (memory: a tmpfs in the DaemonSet). The source QEMU migrates to a socket the agent listens on
 * where QEMU can reach it ({@link QemuVm#sockets()}: inside a virt-launcher pod, through
 * {@code /proc/<pid>/root}); QEMU's sandbox there forbids {@code exec:}, {@code unix:} is allowed.
 * A precopy stream replays as it arrived (later copies of a page win), so the file restarts the VM
 * when fed to a QEMU of the same machine waiting with {@code -incoming defer}, and is what levels
 * 1 and 2 store. Pages dirtied again during the live stage are sent again, so the stream can
 * outgrow the guest's RAM: past {@code bound} bytes the live stage ends ({@link #boundReached}),
 * which keeps level 0 memory-bound.
 */
public final class HeldStream implements Level0Copy, HeldState {
    private static final Logger LOG = Logger.getLogger(HeldStream.class);
    static final String SOCKET = "mekha-outgoing.sock";
    private static final int CHUNK = 1 << 20;

    private final QemuVm source;
    private final Path file;
    private final long bound;
    private final Path diskInPod;
    private final Path diskCopy;
    private final AtomicLong bytes = new AtomicLong();
    private final CountDownLatch ended = new CountDownLatch(1);
    private volatile ServerSocketChannel server;
    private volatile Thread pump;
    private volatile String error;
    private volatile boolean discarded;
    private volatile boolean accepted;
    private volatile SocketChannel connection;
    private volatile boolean holdingSwitchover;
    private boolean switchoverReleased;

    /**
     * @param file where the stream is held (its directory is created)
     * @param bound bytes past which the live stage should end (0: none)
     */
    public HeldStream(QemuVm source, Path file, long bound) {
        this(source, file, bound, null, null);
    }

    /**
     * With a disk that lives only in the VM's pod (a containerDisk's writable overlay): once the stream is whole, the
     * VM paused at the cut (QEMU has drained and flushed its block I/O and handed its images over, as at the end of a
     * migration), the agent copies {@code diskOnHost} to {@code diskCopy}, beside the stream.
     */
    public HeldStream(QemuVm source, Path file, long bound, Path diskOnHost, Path diskCopy) {
        this.source = source;
        this.file = file;
        this.bound = bound;
        this.diskInPod = diskOnHost;
        this.diskCopy = diskCopy;
    }

    @Override
    public String receive() throws IOException {
        Files.createDirectories(file.getParent());
        Files.deleteIfExists(file);
        server = source.sockets().listen(SOCKET);
        pump = new Thread(this::pump, "held-stream-" + source.name());
        pump.setDaemon(true);
        pump.start();
        return "unix:" + source.sockets().inQemu(SOCKET);
    }

    private void pump() {
        try (ServerSocketChannel listening = server;
             SocketChannel from = listening.accept();
             FileChannel to = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            accepted = true;
            connection = from;
            source.sockets().remove(SOCKET); // connected: nobody else may
            ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK);
            while (from.read(buffer) >= 0) {
                buffer.flip();
                while (buffer.hasRemaining()) {
                    bytes.addAndGet(to.write(buffer));
                }
                buffer.clear();
            }
        } catch (IOException e) {
            if (!discarded) {
                error = "the stream from QEMU broke: " + e.getMessage();
                LOG.warnf("VM '%s': %s", source.name(), error);
            }
        } finally {
            // the socket file is removed by whoever knows it is this stream's: here once connected, else discard()
            // (a live stage started over binds the same name at once; a late removal here would take the new one)
            ended.countDown();
        }
    }

    /**
     * The agent can withhold the switchover like a destination QEMU would (by default; {@code MEKHA_HOLD_SWITCHOVER=0}: not): on the
     * return path (the same socket), it sends QEMU's {@code MIG_RP_MSG_SWITCHOVER_ACK} only once the VM is stopped at
     * its cut, then {@code MIG_RP_MSG_SHUT}, after which the source completes without waiting for more.
     */
    @Override
    public boolean offersSwitchoverAck() {
        return true;
    }

    /** This migration holds the switchover until {@link #releaseSwitchover()} (the source has switchover-ack on). */
    public void holdSwitchover() {
        holdingSwitchover = true;
    }

    /** Acknowledges the switchover and shuts the return path (no-op when not holding, or done already). */
    public synchronized void releaseSwitchover() throws IOException {
        if (!holdingSwitchover || switchoverReleased) {
            return;
        }
        SocketChannel channel = connection;
        if (channel == null) {
            throw new IOException("QEMU never connected to take its state");
        }
        // be16 type, be16 length, payload: SWITCHOVER_ACK (7, no payload), SHUT (1, be32 0: no error)
        ByteBuffer messages = ByteBuffer.wrap(new byte[] {0, 7, 0, 0, 0, 1, 0, 4, 0, 0, 0, 0});
        while (messages.hasRemaining()) {
            channel.write(messages);
        }
        switchoverReleased = true;
    }

    @Override
    public String awaitComplete(long deadline) throws InterruptedException {
        if (!ended.await(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
            return "QEMU's stream did not end in time (" + bytes.get() + " bytes held)";
        }
        if (error == null && diskInPod != null) {
            try {
                Files.copy(diskInPod, diskCopy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException e) {
                error = "cannot copy its disk " + diskInPod + " at the cut: " + e.getMessage();
            }
        }
        return error;
    }

    /** The VM's pod-only disk as it was at the cut (null: none, or not captured yet). */
    @Override
    public Path disk() {
        return diskCopy != null && complete() && Files.exists(diskCopy) ? diskCopy : null;
    }

    /** Whether the whole stream is held (QEMU completed and closed it, nothing broke). */
    public boolean complete() {
        return ended.getCount() == 0 && error == null && !discarded;
    }

    @Override
    public boolean held() {
        return complete();
    }

    @Override
    public boolean lost() {
        return error != null;
    }

    /** Whether the stream passed its bound: the live stage should end now. */
    public boolean boundReached() {
        return bound > 0 && bytes.get() > bound;
    }

    @Override
    public long bytes() {
        return bytes.get();
    }

    public Path file() {
        return file;
    }

    /** Reads the held stream (complete ones only); may be read any number of times. */
    @Override
    public InputStream open() throws IOException {
        if (!complete()) {
            throw new IOException("the stream of VM '" + source.name() + "' is not complete" + (error == null ? "" : ": " + error));
        }
        return Files.newInputStream(file);
    }

    @Override
    public void discard() {
        discarded = true;
        try {
            ServerSocketChannel s = server;
            if (s != null) {
                s.close();
            }
        } catch (IOException ignored) {
            // closing only to end the accept
        }
        Thread t = pump;
        if (t != null) {
            t.interrupt(); // an interrupted channel read closes the channel
            try {
                t.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (!accepted) {
            source.sockets().remove(SOCKET);
        }
        try {
            Files.deleteIfExists(file);
            if (diskCopy != null) {
                Files.deleteIfExists(diskCopy);
            }
        } catch (IOException e) {
            LOG.warnf("VM '%s': cannot delete its held stream %s: %s", source.name(), file, e.getMessage());
        }
    }

    @Override
    public String describe() {
        return "its stream held in memory";
    }
}
