package io.mekha.agent.network;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.Set;
import java.util.function.Function;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import org.jboss.logging.Logger;

/**
 * The control channel of a {@link SegmentHub}: a Unix socket in a directory only its user can
 * enter, and the kernel's word (SO_PEERCRED) on who connected. Only the hub's own user (the
 * agents of this VC) and root may attach or detach a NIC; before this, any process on the host
 * could send a UDP datagram that put its own port in a VM's place and read the VC's traffic.
 *
 * <p>One request per connection: a line {@code attach <mac> <port>} or {@code detach <mac> <port>}, and
 * a line back, {@code ok} or {@code error <why>}, so the sender knows the NIC is joined before
 * the VM runs.
 */
public final class HubControl implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(HubControl.class);
    private static final int MAX_REQUEST = 256;
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rwx------");

    private final Path socket;
    private final ServerSocketChannel server;
    private final UserPrincipal owner;
    private final Function<String, String> handler;
    private final Thread acceptor;

    private HubControl(Path socket, ServerSocketChannel server, UserPrincipal owner, Function<String, String> handler) {
        this.socket = socket;
        this.server = server;
        this.owner = owner;
        this.handler = handler;
        this.acceptor = new Thread(this::serve, "hub-control " + socket.getFileName());
        this.acceptor.setDaemon(true);
        this.acceptor.start();
    }

    /**
     * Serves the control socket of the hub on UDP {@code hubPort}; {@code handler} turns a request
     * line into the reply line. The caller holds the UDP port, so a socket file left at the place
     * is a dead hub's and is replaced.
     */
    static HubControl serve(int hubPort, Function<String, String> handler) throws IOException {
        Path socket = place(hubPort);
        Files.deleteIfExists(socket);
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            server.close();
            throw new IOException("segment hub on port " + hubPort + ": cannot bind its control socket " + socket + ": " + e.getMessage(), e);
        }
        return new HubControl(socket, server, Files.getOwner(socket.getParent(), LinkOption.NOFOLLOW_LINKS), handler);
    }

    /** Sends one request to the hub on UDP {@code hubPort}; throws with the hub's reason if it refuses. */
    static void request(int hubPort, String line) throws IOException {
        Path socket = place(hubPort);
        String reply;
        try (SocketChannel channel = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            channel.write(ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.US_ASCII)));
            channel.shutdownOutput();
            reply = readLine(channel);
        } catch (IOException e) {
            throw new IOException("segment hub on port " + hubPort + " does not answer at " + socket + " (" + e.getMessage()
                    + "); is the agent hosting the VC's segment running?", e);
        }
        if (!reply.equals("ok")) {
            throw new IOException("segment hub on port " + hubPort + " refused '" + line + "': " + reply);
        }
    }

    /**
     * Where the control socket of the hub on UDP {@code hubPort} lives: a directory of this user's
     * under the temporary directory, made owner-only. A directory there that another user made (or
     * a link) is refused, not used: whoever made it could swap the socket.
     */
    static Path place(int hubPort) throws IOException {
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "mekha-hubs-" + uid());
        try {
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        } catch (FileAlreadyExistsException e) {
            // checked below, without following a link
        }
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)
                || ((Integer) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS)) != uid()
                || !Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS).equals(OWNER_ONLY)) {
            throw new IOException(dir + " is not a directory of this user's with mode 0700: remove it (another user may have made it)");
        }
        return dir.resolve("hub-" + hubPort + ".sock");
    }

    private static int uid() throws IOException {
        return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
    }

    private void serve() {
        while (server.isOpen()) {
            try {
                SocketChannel client = server.accept();
                // one thread per request: a client that connects and says nothing holds only its own
                Thread answer = new Thread(() -> answer(client), "hub-control request");
                answer.setDaemon(true);
                answer.start();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                LOG.debugf("segment hub %s: accept: %s", socket.getFileName(), e.getMessage());
            }
        }
    }

    private void answer(SocketChannel client) {
        try (client) {
            UnixDomainPrincipal peer = client.getOption(ExtendedSocketOptions.SO_PEERCRED);
            String line = readLine(client); // read even when refusing, or closing would reset the connection
            String reply;
            if (!peer.user().equals(owner) && !peer.user().getName().equals("root")) {
                reply = "error user " + peer.user().getName() + " may not control this segment (only " + owner.getName() + " and root)";
                LOG.warnf("segment hub %s: refused a control request from user %s", socket.getFileName(), peer.user().getName());
            } else {
                reply = handle(line);
            }
            client.write(ByteBuffer.wrap((reply + "\n").getBytes(StandardCharsets.US_ASCII)));
        } catch (IOException | RuntimeException e) {
            LOG.debugf("segment hub %s: control connection: %s", socket.getFileName(), e.getMessage());
        }
    }

    private String handle(String line) {
        try {
            return handler.apply(line);
        } catch (IllegalArgumentException e) {
            return "error " + e.getMessage();
        }
    }

    private static String readLine(SocketChannel channel) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(MAX_REQUEST);
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer);
            if (n < 0) {
                break;
            }
            if (contains(buffer, (byte) '\n')) {
                break;
            }
        }
        String text = new String(buffer.array(), 0, buffer.position(), StandardCharsets.US_ASCII);
        int end = text.indexOf('\n');
        return (end < 0 ? text : text.substring(0, end)).trim();
    }

    private static boolean contains(ByteBuffer buffer, byte b) {
        for (int i = 0; i < buffer.position(); i++) {
            if (buffer.get(i) == b) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void close() throws IOException {
        server.close();
        Files.deleteIfExists(socket);
    }
}
