package io.mekha.agent.network;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLong;
import com.sun.jna.ptr.IntByReference;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A Unix datagram socket ({@code AF_UNIX}, {@code SOCK_DGRAM}), which the JDK does not offer: the segment hub's end of
 * QEMU's {@code dgram} netdevs. Unlike a UDP port on loopback, a Unix socket is a file: only a process that may enter
 * its directory (the hub's owner-only one) can send to it, and a sender's address is the path it is bound to.
 */
final class UnixDatagram implements AutoCloseable {
    private static final int AF_UNIX = 1;
    private static final int SOCK_DGRAM = 2;
    private static final int SOCK_CLOEXEC = 02000000;
    private static final int SOL_SOCKET = 1;
    private static final int SO_RCVTIMEO = 20;
    private static final int EAGAIN = 11;
    private static final int EINTR = 4;
    /** sizeof(struct sockaddr_un): a 2-byte family, then 108 bytes of path. */
    private static final int ADDRESS = 110;
    private static final int MAX_PATH = 107;

    interface LibC extends Library {
        int socket(int domain, int type, int protocol) throws LastErrorException;

        int bind(int fd, byte[] address, int length) throws LastErrorException;

        int setsockopt(int fd, int level, int option, byte[] value, int length) throws LastErrorException;

        NativeLong recvfrom(int fd, byte[] buffer, NativeLong length, int flags, byte[] from, IntByReference fromLength) throws LastErrorException;

        NativeLong sendto(int fd, byte[] buffer, NativeLong length, int flags, byte[] to, int toLength) throws LastErrorException;

        int close(int fd) throws LastErrorException;
    }

    private static final LibC C = Native.load("c", LibC.class);

    /** A datagram and who sent it (the path its socket is bound to, or null for an unbound sender). */
    record Received(int length, Path from) {}

    private final int fd;
    private final Path path;
    private volatile boolean closed;
    private boolean fdClosed;

    private UnixDatagram(int fd, Path path) {
        this.fd = fd;
        this.path = path;
    }

    /** Binds a socket at {@code path} (which must not exist); receives wake up every {@code pollMillis} to see if it was closed. */
    static UnixDatagram bind(Path path, int pollMillis) throws IOException {
        byte[] address = address(path);
        int fd;
        try {
            fd = C.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        } catch (LastErrorException e) {
            throw new IOException("cannot open a Unix datagram socket: errno " + e.getErrorCode(), e);
        }
        try {
            C.bind(fd, address, ADDRESS);
            byte[] timeout = new byte[16]; // struct timeval on 64-bit Linux: seconds, microseconds
            long micros = pollMillis * 1000L;
            putLong(timeout, 0, micros / 1_000_000);
            putLong(timeout, 8, micros % 1_000_000);
            C.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, timeout.length);
        } catch (LastErrorException e) {
            C.close(fd);
            throw new IOException("cannot bind a Unix datagram socket at " + path + ": errno " + e.getErrorCode(), e);
        }
        return new UnixDatagram(fd, path);
    }

    Path path() {
        return path;
    }

    /** The next datagram into {@code buffer}, or null if none came within the poll period; throws once closed. */
    synchronized Received receive(byte[] buffer) throws IOException {
        if (closed) {
            throw new java.nio.channels.ClosedChannelException();
        }
        byte[] from = new byte[ADDRESS];
        IntByReference fromLength = new IntByReference(ADDRESS);
        long n;
        try {
            n = C.recvfrom(fd, buffer, new NativeLong(buffer.length), 0, from, fromLength).longValue();
        } catch (LastErrorException e) {
            if (e.getErrorCode() == EAGAIN || e.getErrorCode() == EINTR) {
                if (closed) {
                    throw new java.nio.channels.ClosedChannelException();
                }
                return null;
            }
            throw new IOException("receive on " + path + ": errno " + e.getErrorCode(), e);
        }
        return new Received((int) n, sender(from, fromLength.getValue()));
    }

    /** Sends {@code length} bytes of {@code buffer} to the socket bound at {@code to}. */
    synchronized void send(byte[] buffer, int length, Path to) throws IOException {
        if (closed) {
            throw new java.nio.channels.ClosedChannelException();
        }
        try {
            C.sendto(fd, buffer, new NativeLong(length), 0, address(to), ADDRESS);
        } catch (LastErrorException e) {
            throw new IOException("send to " + to + ": errno " + e.getErrorCode(), e);
        }
    }

    private static byte[] address(Path path) throws IOException {
        byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
        if (name.length > MAX_PATH) {
            throw new IOException("the socket path " + path + " is longer than a Unix socket's " + MAX_PATH + " bytes: set a shorter TMPDIR");
        }
        byte[] address = new byte[ADDRESS];
        address[0] = (byte) AF_UNIX; // sa_family_t, little-endian
        System.arraycopy(name, 0, address, 2, name.length);
        return address;
    }

    private static Path sender(byte[] address, int length) {
        int end = 2;
        while (end < Math.min(length, ADDRESS) && address[end] != 0) {
            end++;
        }
        return end == 2 ? null : Path.of(new String(address, 2, end - 2, StandardCharsets.UTF_8));
    }

    private static void putLong(byte[] b, int at, long v) {
        for (int i = 0; i < 8; i++) {
            b[at + i] = (byte) (v >>> (8 * i));
        }
    }

    /**
     * Closes the socket once a receive under way returns (within the poll period): an fd closed under a thread still
     * in recvfrom could be reused by the next open and read from by that thread.
     */
    @Override
    public void close() {
        closed = true; // seen by the next receive, which then does not block again
        synchronized (this) {
            if (!fdClosed) {
                fdClosed = true;
                try {
                    C.close(fd);
                } catch (LastErrorException ignored) {
                    // closed already
                }
            }
        }
    }
}
