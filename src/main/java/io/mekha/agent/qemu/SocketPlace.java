package io.mekha.agent.qemu;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where a QEMU and the agent meet on unix sockets (migration streams in and out). For a QEMU the
 * agent started, QEMU and agent see the same directory; for a QEMU in a virt-launcher pod, QEMU
 * names a path in its pod and the agent reaches the same socket through {@code /proc/<pid>/root}.
 */
public interface SocketPlace {

    /** The path QEMU is given for socket {@code name}. */
    String inQemu(String name);

    /** The path the agent connects to for socket {@code name}, which QEMU listens on. */
    Path forAgent(String name) throws IOException;

    /** Connects to socket {@code name}, which QEMU listens on. */
    default SocketChannel connect(String name) throws IOException {
        return SocketChannel.open(UnixDomainSocketAddress.of(forAgent(name)));
    }

    /** Binds socket {@code name} for QEMU to connect to (QEMU's user may connect); the caller closes it and calls {@link #remove}. */
    ServerSocketChannel listen(String name) throws IOException;

    /** Removes socket {@code name} (best effort). */
    void remove(String name);

    /** A unix server socket bound at {@code path} (closed again when binding fails). */
    static ServerSocketChannel bind(Path path) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(path));
        } catch (IOException e) {
            server.close();
            throw e;
        }
        return server;
    }

    /** A directory both see under one path: a QEMU of the agent's own. */
    static SocketPlace shared(Path dir) {
        return new SocketPlace() {
            @Override
            public String inQemu(String name) {
                return dir.resolve(name).toString();
            }

            @Override
            public Path forAgent(String name) {
                return dir.resolve(name);
            }

            @Override
            public ServerSocketChannel listen(String name) throws IOException {
                Files.createDirectories(dir);
                Files.deleteIfExists(dir.resolve(name));
                return bind(dir.resolve(name));
            }

            @Override
            public void remove(String name) {
                try {
                    Files.deleteIfExists(dir.resolve(name));
                } catch (IOException ignored) {
                    // a leftover socket is replaced next time
                }
            }
        };
    }
}
