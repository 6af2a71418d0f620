package io.mekha.agent.network;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
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
 * <p>Control messages (from any process on this host) are datagrams starting with
 * {@value #CONTROL_MAGIC}: {@code attach <mac> <port>} and {@code detach <mac>}.
 */
public final class SegmentHub implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SegmentHub.class);
    public static final String CONTROL_MAGIC = "MEKHA-HUB:";
    private static final int MAX_FRAME = 65536;

    private final String name;
    private final DatagramChannel channel;
    private final Map<String, InetSocketAddress> ports = new ConcurrentHashMap<>();
    private final Thread repeater;
    private volatile long framesRepeated;

    private SegmentHub(String name, DatagramChannel channel) {
        this.name = name;
        this.channel = channel;
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
        return new SegmentHub(name, channel);
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

    void attach(String mac, int port) {
        InetSocketAddress previous = ports.put(mac.toLowerCase(), new InetSocketAddress("127.0.0.1", port));
        LOG.debugf("segment %s: %s attached at port %d (was %s)", name, mac, port, previous);
    }

    void detach(String mac) {
        ports.remove(mac.toLowerCase());
    }

    private void repeat() {
        ByteBuffer buffer = ByteBuffer.allocateDirect(MAX_FRAME);
        while (channel.isOpen()) {
            try {
                buffer.clear();
                SocketAddress from = channel.receive(buffer);
                buffer.flip();
                if (isControl(buffer)) {
                    control(buffer);
                    continue;
                }
                if (!ports.containsValue(from)) {
                    continue; // a NIC that is not (or no longer) attached: a dead VM or a paused shadow
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

    private static boolean isControl(ByteBuffer frame) {
        byte[] magic = CONTROL_MAGIC.getBytes(StandardCharsets.US_ASCII);
        if (frame.remaining() < magic.length) {
            return false;
        }
        for (int i = 0; i < magic.length; i++) {
            if (frame.get(frame.position() + i) != magic[i]) {
                return false;
            }
        }
        return true;
    }

    private void control(ByteBuffer message) {
        byte[] bytes = new byte[message.remaining()];
        message.get(bytes);
        String[] words = new String(bytes, StandardCharsets.US_ASCII).substring(CONTROL_MAGIC.length()).trim().split("\\s+");
        if (words.length == 3 && words[0].equals("attach")) {
            attach(words[1], Integer.parseInt(words[2]));
        } else if (words.length == 2 && words[0].equals("detach")) {
            detach(words[1]);
        } else {
            LOG.warnf("segment %s: ignoring malformed control message %s", name, String.join(" ", words));
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
