package io.mekha.agent.network;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * A virtual cluster's L2 segment on this host: an Ethernet hub over UDP on the loopback
 * interface. Each VM's NIC is a QEMU {@code dgram} netdev whose remote end is this hub; the hub
 * repeats every frame to every other attached NIC. No root, no multicast, nothing leaves 127.0.0.1.
 *
 * <p>Exactly one port is attached per MAC address. A shadow is attached only when it is
 * restarted (replacing the crashed VM's port): a paused shadow must never receive frames sent
 * after its cut, or it would replay them from its socket buffer when resumed.
 *
 * <p>NICs are attached and detached through the hub's {@link HubControl} socket, which only
 * the hub's user and root can use; the UDP port carries frames only, and a frame from a port
 * that is not attached is dropped.
 */
public final class SegmentHub implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SegmentHub.class);
    private static final int MAX_FRAME = 65536;
    private static final Pattern MAC = Pattern.compile("(?i)[0-9a-f]{2}(:[0-9a-f]{2}){5}");

    private final String name;
    private final DatagramChannel channel;
    private final Map<String, InetSocketAddress> ports = new ConcurrentHashMap<>();
    private final HubControl control;
    private final Thread repeater;
    private volatile long framesRepeated;
    private volatile long framesDropped;

    private SegmentHub(String name, DatagramChannel channel) throws IOException {
        this.name = name;
        this.channel = channel;
        this.control = HubControl.serve(port(), this::control);
        this.repeater = new Thread(this::repeat, "segment-hub " + name);
        this.repeater.setDaemon(true);
        this.repeater.start();
    }

    /** Opens a hub on 127.0.0.1:{@code port} (0: any free port). */
    public static SegmentHub open(String name, int port) throws IOException {
        DatagramChannel channel = DatagramChannel.open();
        try {
            channel.bind(new InetSocketAddress("127.0.0.1", port));
        } catch (IOException e) {
            channel.close();
            throw new IOException("segment '" + name + "': cannot bind 127.0.0.1:" + port + " (" + e.getMessage()
                    + "); is another VC with the same segment running?", e);
        }
        try {
            return new SegmentHub(name, channel);
        } catch (IOException e) {
            channel.close();
            throw e;
        }
    }

    public int port() {
        try {
            return ((InetSocketAddress) channel.getLocalAddress()).getPort();
        } catch (IOException e) {
            throw new IllegalStateException("hub " + name + " is closed", e);
        }
    }

    public String name() {
        return name;
    }

    public Map<String, InetSocketAddress> attached() {
        return Map.copyOf(ports);
    }

    public long framesRepeated() {
        return framesRepeated;
    }

    /** Frames from a port that is not attached: a dead VM, a paused shadow, or a stranger. */
    public long framesDropped() {
        return framesDropped;
    }

    void attach(String mac, int port) {
        InetSocketAddress previous = ports.put(mac.toLowerCase(), new InetSocketAddress("127.0.0.1", port));
        LOG.debugf("segment %s: %s attached at port %d (was %s)", name, mac, port, previous);
    }

    /** Detaches {@code mac}'s NIC if it is still the one at {@code port}: a copy that took the MAC's place since stays. */
    void detach(String mac, int port) {
        ports.remove(mac.toLowerCase(), new InetSocketAddress("127.0.0.1", port));
    }

    private void repeat() {
        ByteBuffer buffer = ByteBuffer.allocateDirect(MAX_FRAME);
        while (channel.isOpen()) {
            try {
                buffer.clear();
                SocketAddress from = channel.receive(buffer);
                buffer.flip();
                if (!ports.containsValue(from)) {
                    framesDropped++; // a NIC that is not (or no longer) attached, or a process that is no NIC
                    continue;
                }
                for (InetSocketAddress to : ports.values()) {
                    if (!to.equals(from)) {
                        channel.send(buffer.duplicate(), to);
                    }
                }
                framesRepeated++;
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                // a send to a port whose QEMU just died; the frame is lost as on a real wire
                LOG.tracef("segment %s: %s", name, e.getMessage());
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
            int port;
            try {
                port = Integer.parseInt(words[2]);
            } catch (NumberFormatException e) {
                port = -1;
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("'" + words[2] + "' is not a UDP port (1-65535)");
            }
            if (words[0].equals("attach")) {
                attach(words[1], port);
            } else {
                detach(words[1], port);
            }
            return "ok";
        }
        throw new IllegalArgumentException("'" + request + "' is neither 'attach <mac> <port>' nor 'detach <mac> <port>'");
    }

    @Override
    public void close() throws IOException {
        try {
            control.close();
        } finally {
            channel.close();
        }
    }
}
