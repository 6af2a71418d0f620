package io.mekha.agent.kubevirt;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A pod's root filesystem as the root agent on the host reaches it, without ever leaving it. Paths
 * inside the pod are opened with {@code openat2(2)} relative to a descriptor of the pod's root
 * ({@code /proc/<pid>/root}) with {@code RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS}: every symbolic
 * link on the way, absolute or not, resolves inside the pod, {@code ..} stops at its root, and no
 * {@code /proc} magic link leads out. What is opened is a descriptor ({@code O_PATH}), and the agent
 * then works through {@code /proc/self/fd/N}, which names that very file however the pod's tree
 * changes afterwards: a link swapped in after the check (a tenant's move during the live stage)
 * cannot turn a read, a write, a chown or a bind into one on the host's filesystem.
 *
 * <p>Before this, paths were resolved once into {@code /proc/<pid>/root/...} strings and then copied,
 * written and chowned by name, following links: a swap after the check reached the host.
 */
public final class PodRoot implements AutoCloseable {
    private static final long SYS_OPENAT2 = 437; // the same on x86_64 and aarch64 (Linux 5.6+)
    private static final int AT_FDCWD = -100;
    private static final int O_PATH = 010000000;
    private static final int O_CLOEXEC = 02000000;
    private static final int O_DIRECTORY = System.getProperty("os.arch").equals("aarch64") ? 040000 : 0200000;
    private static final int AT_SYMLINK_NOFOLLOW = 0x100;
    private static final long RESOLVE_NO_MAGICLINKS = 0x02;
    private static final long RESOLVE_IN_ROOT = 0x10;
    private static final int ENOENT = 2;

    interface LibC extends Library {
        int open(String path, int flags) throws LastErrorException;

        long syscall(long number, Object... args) throws LastErrorException;

        int close(int fd) throws LastErrorException;

        int unlinkat(int dirfd, String path, int flags) throws LastErrorException;

        int fchownat(int dirfd, String path, int owner, int group, int flags) throws LastErrorException;
    }

    private static volatile LibC libc;

    private static LibC libc() {
        LibC c = libc;
        if (c == null) {
            c = Native.load("c", LibC.class);
            libc = c;
        }
        return c;
    }

    /** A file or directory inside the pod, held open; {@link #path()} names exactly it for as long as it is open. */
    public static final class Opened implements AutoCloseable {
        private final int fd;
        private final String inPod;
        private boolean closed;

        private Opened(int fd, String inPod) {
            this.fd = fd;
            this.inPod = inPod;
        }

        /** {@code /proc/self/fd/N}: reopen, read, write or connect through it; the kernel never walks the pod's tree again. */
        public Path path() {
            return Path.of("/proc/self/fd/" + fd);
        }

        /** {@code name} in this directory, through the descriptor: for bind, where the last component is made, never followed. */
        public Path child(String name) {
            return path().resolve(requireName(name));
        }

        /** Where it is in the pod, for messages. */
        public String inPod() {
            return inPod;
        }

        /** Removes the entry {@code name} of this directory (a link is removed, not followed); absent is fine. */
        public void unlink(String name) throws IOException {
            try {
                libc().unlinkat(fd, requireName(name), 0);
            } catch (LastErrorException e) {
                if (e.getErrorCode() != ENOENT) {
                    throw new IOException("cannot remove " + inPod + "/" + name + " in the pod: errno " + e.getErrorCode());
                }
            }
        }

        /** Gives the entry {@code name} of this directory to {@code uid:gid}, never following a link. */
        public void chown(String name, int uid, int gid) throws IOException {
            try {
                libc().fchownat(fd, requireName(name), uid, gid, AT_SYMLINK_NOFOLLOW);
            } catch (LastErrorException e) {
                throw new IOException("cannot hand " + inPod + "/" + name + " in the pod to " + uid + ":" + gid + ": errno " + e.getErrorCode());
            }
        }

        @Override
        public synchronized void close() {
            if (!closed) {
                closed = true;
                try {
                    libc().close(fd);
                } catch (LastErrorException ignored) {
                    // already gone
                }
            }
        }
    }

    private final Opened root;

    private PodRoot(Opened root) {
        this.root = root;
    }

    /** The root of the process whose {@code /proc} directory is {@code processDir}: its {@code root} link, the pod's root. */
    public static PodRoot ofProcess(Path processDir) throws IOException {
        return ofDirectory(processDir.resolve("root"));
    }

    /** {@code dir} as the root. */
    public static PodRoot ofDirectory(Path dir) throws IOException {
        String path = dir.toString();
        try {
            return new PodRoot(new Opened(libc().open(path, O_PATH | O_DIRECTORY | O_CLOEXEC), "/"));
        } catch (LastErrorException e) {
            throw new IOException("cannot open the root " + path + ": errno " + e.getErrorCode());
        }
    }

    /** {@code pathInPod} (absolute, as the pod sees it), opened inside the pod's root. */
    public Opened open(String pathInPod) throws IOException {
        return openat2(pathInPod, O_PATH | O_CLOEXEC);
    }

    /** The directory {@code pathInPod}, opened inside the pod's root. */
    public Opened openDirectory(String pathInPod) throws IOException {
        return openat2(pathInPod, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }

    /** Whether {@code pathInPod} exists inside the pod's root. */
    public boolean exists(String pathInPod) {
        try (Opened ignored = open(pathInPod)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private Opened openat2(String pathInPod, int flags) throws IOException {
        if (pathInPod == null || !pathInPod.startsWith("/")) {
            throw new IOException("a path in the pod must be absolute, got '" + pathInPod + "'");
        }
        byte[] name = pathInPod.getBytes(StandardCharsets.UTF_8);
        Memory path = new Memory(name.length + 1L);
        path.write(0, name, 0, name.length);
        path.setByte(name.length, (byte) 0);
        Memory how = new Memory(24); // struct open_how { u64 flags; u64 mode; u64 resolve; }
        how.setLong(0, flags & 0xffffffffL);
        how.setLong(8, 0);
        how.setLong(16, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
        try {
            long fd = libc().syscall(SYS_OPENAT2, (long) root.fd, path, how, 24L);
            return new Opened((int) fd, pathInPod);
        } catch (LastErrorException e) {
            String why = switch (e.getErrorCode()) {
                case ENOENT -> "it does not exist in the pod";
                case 38 -> "this kernel has no openat2 (Linux 5.6+ is needed)";
                case 40 -> "too many links, or a link the agent will not follow";
                default -> "errno " + e.getErrorCode();
            };
            throw new IOException("cannot open " + pathInPod + " in the pod: " + why);
        }
    }

    private static String requireName(String name) {
        if (name == null || name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..")) {
            throw new IllegalArgumentException("'" + name + "' is not a plain file name");
        }
        return name;
    }

    @Override
    public void close() {
        root.close();
    }
}
