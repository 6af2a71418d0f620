package io.mekha.agent.network;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.DatagramChannel;

/** Talks to a {@link SegmentHub} from any process: attaches and detaches NICs, finds free ports for them. */
public final class SegmentPort {
    private SegmentPort() {}

    /** A free UDP port on 127.0.0.1 for a QEMU dgram netdev to bind. */
    public static int freeUdpPort() throws IOException {
        try (DatagramChannel probe = DatagramChannel.open()) {
            probe.bind(new InetSocketAddress("127.0.0.1", 0));
            return ((InetSocketAddress) probe.getLocalAddress()).getPort();
        }
    }

    /**
     * Makes {@code port} the one NIC port of {@code mac} on the hub at {@code hubPort}; returns once
     * the hub has done it, or throws with the hub's reason.
     */
    public static void attach(int hubPort, String mac, int port) throws IOException {
        send(hubPort, "attach " + mac + " " + port);
    }

    /** Takes {@code mac}'s NIC at {@code port} off the hub, unless another port (a copy that replaced it) holds the MAC now. */
    public static void detach(int hubPort, String mac, int port) throws IOException {
        send(hubPort, "detach " + mac + " " + port);
    }

    private static void send(int hubPort, String command) throws IOException {
        HubControl.request(hubPort, command);
    }
}
