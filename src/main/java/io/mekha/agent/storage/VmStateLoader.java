package io.mekha.agent.storage;

import com.github.luben.zstd.ZstdInputStream;
import io.mekha.agent.level0.IncomingState;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.SocketPlace;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import io.mekha.storage.StoredStream.Compression;
import io.mekha.storage.StoredStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Feeds a VM's state into a QEMU waiting with {@code -incoming defer}, as a migration stream over a unix socket where
 * QEMU and the agent meet: a stored stream (checksummed again on the way in) or a stream held in memory.
 */
public final class VmStateLoader {
    private static final int CHUNK = 1 << 20;
    private static final AtomicLong SEQ = new AtomicLong();

    /**
     * Feeds a stored stream into a QEMU started with {@code -incoming defer -S}; returns once it
     * has loaded the whole state and is paused, ready for {@code cont}. The bytes are checksummed
     * again on the way in: a file changed since it was verified fails the load.
     */
    public void load(QemuVm incoming, InputStream stored, StoredStream stream, Duration timeout) throws StoredStateException, InterruptedException {
        String vm = incoming.name();
        StreamDigest digest = new StreamDigest(OutputStream.nullOutputStream());
        InputStream checked = new java.io.FilterInputStream(stored) {
            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                int n = super.read(b, off, len);
                if (n > 0) {
                    digest.write(b, off, n);
                }
                return n;
            }
        };
        try {
            InputStream state = Compression.parse(stream.compression()) == Compression.ZSTD ? new ZstdInputStream(checked) : checked;
            feed(incoming, state, -1, timeout, () -> StreamDigest.check(stream, digest.count, digest.hex(), "the stream fed to VM '" + vm + "'", vm));
        } catch (IOException e) {
            throw new StoredStateException("VM '" + vm + "': feeding its stored state to QEMU failed: " + e.getMessage() + qemuSays(incoming), e);
        }
    }

    /** Feeds a raw migration stream of {@code bytes} bytes (a level-0 stream held in memory) to a QEMU waiting with {@code -incoming defer}. */
    public void feed(QemuVm incoming, InputStream raw, long bytes, Duration timeout) throws StoredStateException, InterruptedException {
        feed(incoming, raw, bytes, timeout, () -> { });
    }

    private interface Check {
        void run() throws StoredStateException;
    }

    /**
     * QEMU listens where it and the agent meet ({@link QemuVm#sockets()}: inside a virt-launcher pod, reached through
     * /proc), the agent connects and writes the stream, checks it ({@code afterFed}), and waits until QEMU loaded it.
     */
    private void feed(QemuVm incoming, InputStream state, long expected, Duration timeout, Check afterFed)
            throws StoredStateException, InterruptedException {
        String vm = incoming.name();
        long deadline = System.nanoTime() + timeout.toNanos();
        String name = "load-" + SEQ.incrementAndGet() + ".sock";
        try {
            incoming.sockets().remove(name);
            incoming.qmp().execute("migrate-incoming", QmpClient.args().put("uri", "unix:" + incoming.sockets().inQemu(name)));
            long fed = 0;
            try (SocketChannel to = connectWithin(incoming.sockets(), name, Duration.ofSeconds(10), incoming)) {
                OutputStream out = Channels.newOutputStream(to);
                byte[] buffer = new byte[CHUNK];
                int n;
                while ((n = state.read(buffer)) > 0) {
                    out.write(buffer, 0, n);
                    fed += n;
                }
                out.flush();
                afterFed.run();
            }
            if (expected >= 0 && fed != expected) {
                throw new StoredStateException("VM '" + vm + "': fed " + fed + " bytes of its stream, it holds " + expected);
            }
            awaitLoaded(incoming, deadline);
        } catch (QmpException e) {
            throw new StoredStateException("VM '" + vm + "': the restarted QEMU refused its stored state: " + e.getMessage()
                    + qemuSays(incoming), e);
        } catch (IOException e) {
            throw new StoredStateException("VM '" + vm + "': feeding its stored state to QEMU failed: " + e.getMessage()
                    + qemuSays(incoming), e);
        } finally {
            incoming.sockets().remove(name);
        }
    }

    public static void awaitLoaded(QemuVm vm, long deadline) throws QmpException, StoredStateException, InterruptedException {
        String problem = IncomingState.awaitLoaded(vm, deadline);
        if (problem != null) {
            throw new StoredStateException("VM '" + vm.name() + "': loading its stored state: " + problem + qemuSays(vm));
        }
    }

    static String qemuSays(QemuVm vm) {
        try {
            String log = Files.exists(vm.paths().log()) ? Files.readString(vm.paths().log()).strip() : "";
            return log.isEmpty() ? "" : " (QEMU: " + log.lines().reduce((a, b) -> b).orElse("") + ")";
        } catch (IOException e) {
            return "";
        }
    }

    private static SocketChannel connectWithin(SocketPlace place, String name, Duration limit, QemuVm vm)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        while (true) {
            try {
                return place.connect(name);
            } catch (IOException e) {
                if (System.nanoTime() > deadline || !vm.isAlive()) {
                    throw new IOException("cannot connect to the restarted QEMU's incoming socket " + place.inQemu(name) + ": "
                            + e.getMessage(), e);
                }
                Thread.sleep(10);
            }
        }
    }
}
