package io.mekha.agent.network;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * A virtual cluster's L2 segment on this host: an Ethernet hub over Unix datagram sockets in the hub owner's private
 * directory ({@link HubControl#dir}). Each VM's NIC is a QEMU {@code dgram} netdev bound to a socket of its own there,
 * whose remote end is the hub's socket; the hub repeats every frame to every other attached NIC. No root, no
 * multicast, no IP at all: only the hub's user (and root) can send a frame to a NIC or to the hub. Before, NICs and
 * hub were UDP ports on loopback, and any local process could put a frame straight into a VM's NIC.
 *
 * <p>The segment's number ({@code port}) names its sockets, and the hub holds UDP {@code 127.0.0.1:port}, which carries
 * nothing, so that the kernel keeps two hubs of one number from running on a host.
 *
 * <p>Exactly one NIC is attached per MAC address. A shadow is attached only when it is restarted (replacing the
 * crashed VM's NIC): a paused shadow must never receive frames sent after its cut, or it would replay them from its
 * socket buffer when resumed.
 *
 * <p>NICs are attached and detached through the hub's {@link HubControl} socket, which only the hub's user and root
 * can use; a frame from a socket that is not attached is dropped.
 */
public final class SegmentHub implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SegmentHub.class);
    private static final int MAX_FRAME = 65536;
    private static final int POLL_MILLIS = 200;
    private static final Pattern MAC = Pattern.compile("(?i)[0-9a-f]{2}(:[0-9a-f]{2}){5}");

    private final String name;
    private final DatagramChannel reservation;
    private final UnixDatagram frames;
    private final Map<String, Path> nics = new ConcurrentHashMap<>();
    private final HubControl control;
    private final Thread repeater;
    private volatile long framesRepeated;
    private volatile long framesDropped;

    private SegmentHub(String name, DatagramChannel reservation, UnixDatagram frames) throws IOException {
        this.name = name;
        this.reservation = reservation;
        this.frames = frames;
        this.control = HubControl.serve(port(), this::control);
        this.repeater = new Thread(this::repeat, "segment-hub " + name);
        this.repeater.setDaemon(true);
        this.repeater.start();
    }

    /** Opens the hub of segment number {@code port} (0: any free number). */
    public static SegmentHub open(String name, int port) throws IOException {
        DatagramChannel reservation = DatagramChannel.open();
        try {
            reservation.bind(new InetSocketAddress("127.0.0.1", port));
        } catch (IOException e) {
            reservation.close();
            throw new IOException("segment '" + name + "': cannot bind 127.0.0.1:" + port + " (" + e.getMessage()
                    + "); is another VC with the same segment running?", e);
        }
        UnixDatagram frames = null;
        try {
            // the number is this hub's now: a socket file left at its place is a dead hub's
            Path place = framesPlace(((InetSocketAddress) reservation.getLocalAddress()).getPort());
            Files.deleteIfExists(place);
            frames = UnixDatagram.bind(place, POLL_MILLIS);
            return new SegmentHub(name, reservation, frames);
        } catch (IOException e) {
            if (frames != null) {
                frames.close();
            }
            reservation.close();
            throw e;
        }
    }

    /** Where the hub of segment {@code hubPort} takes frames. */
    public static Path framesPlace(int hubPort) throws IOException {
        return HubControl.dir().resolve("hub-" + hubPort + ".frames");
    }

    /** Where the NIC numbered {@code nic} (a QEMU dgram netdev) is bound. */
    public static Path nicPlace(int nic) throws IOException {
        return HubControl.dir().resolve("nic-" + nic + ".frames");
    }

    public int port() {
        try {
            return ((InetSocketAddress) reservation.getLocalAddress()).getPort();
        } catch (IOException e) {
            throw new IllegalStateException("hub " + name + " is closed", e);
        }
    }

    public String name() {
        return name;
    }

    /** The attached NICs' sockets by MAC. */
    public Map<String, Path> attached() {
        return Map.copyOf(nics);
    }

    public long framesRepeated() {
        return framesRepeated;
    }

    /** Frames from a socket that is not attached: a dead VM's, a paused shadow's, or a stranger's of this user. */
    public long framesDropped() {
        return framesDropped;
    }

    void attach(String mac, int nic) throws IOException {
        Path previous = nics.put(mac.toLowerCase(), nicPlace(nic));
        LOG.debugf("segment %s: %s attached as NIC %d (was %s)", name, mac, nic, previous);
    }

    /** Detaches {@code mac}'s NIC if it is still NIC {@code nic}: a copy that took the MAC's place since stays. */
    void detach(String mac, int nic) throws IOException {
        nics.remove(mac.toLowerCase(), nicPlace(nic));
    }

    private void repeat() {
        byte[] buffer = new byte[MAX_FRAME];
        while (true) {
            try {
                UnixDatagram.Received frame = frames.receive(buffer);
                if (frame == null) {
                    continue;
                }
                if (frame.from() == null || !nics.containsValue(frame.from())) {
                    framesDropped++; // a NIC that is not (or no longer) attached, or a socket that is no NIC
                    continue;
                }
                for (Path to : nics.values()) {
                    if (!to.equals(frame.from())) {
                        try {
                            frames.send(buffer, frame.length(), to);
                        } catch (ClosedChannelException e) {
                            throw e;
                        } catch (IOException e) {
                            // a NIC whose QEMU just died; the frame is lost as on a real wire
                            LOG.tracef("segment %s: %s", name, e.getMessage());
                        }
                    }
                }
                framesRepeated++;
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                LOG.debugf("segment %s: %s", name, e.getMessage());
            }
        }
    }

    /** One control request from {@link HubControl}: the reply line. */
    private String control(String request) {
        String[] words = request.trim().split("\\s+");
        if (words.length >= 2 && !MAC.matcher(words[1]).matches()) {
            throw new IllegalArgumentException("'" + words[1] + "' is not a MAC address (six hex pairs separated by ':')");
        }
        if (words.length == 3 && (words[0].equals("attach") || words[0].equals("detach"))) {
            int nic;
            try {
                nic = Integer.parseInt(words[2]);
            } catch (NumberFormatException e) {
                nic = -1;
            }
            if (nic < 1) {
                throw new IllegalArgumentException("'" + words[2] + "' is not a NIC number (a positive integer)");
            }
            try {
                if (words[0].equals("attach")) {
                    attach(words[1], nic);
                } else {
                    detach(words[1], nic);
                }
            } catch (IOException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
            return "ok";
        }
        throw new IllegalArgumentException("'" + request + "' is neither 'attach <mac> <nic>' nor 'detach <mac> <nic>'");
    }

    @Override
    public void close() throws IOException {
        try {
            control.close();
        } finally {
            frames.close();
            reservation.close();
            try {
                Files.deleteIfExists(frames.path());
            } catch (IOException ignored) {
                // the directory is being removed
            }
        }
    }
}
