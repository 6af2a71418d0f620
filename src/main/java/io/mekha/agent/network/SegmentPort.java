package io.mekha.agent.network;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;

/** Talks to a {@link SegmentHub} from any process of the hub's user: attaches and detaches NICs, numbers new ones. */
public final class SegmentPort {
    private static final SecureRandom RANDOM = new SecureRandom();

    private SegmentPort() {}

    /** A number for a new NIC whose socket place ({@link SegmentHub#nicPlace}) is free. */
    public static int freeNic() throws IOException {
        for (int attempt = 0; attempt < 100; attempt++) {
            int nic = 1 + RANDOM.nextInt(Integer.MAX_VALUE - 1);
            if (!Files.exists(SegmentHub.nicPlace(nic), java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                return nic;
            }
        }
        throw new IOException("no free NIC socket in " + HubControl.dir());
    }

    /** The socket a NIC's QEMU binds, and the hub's it sends to: arguments of {@code -netdev dgram}. */
    public static String netdev(int hubPort, int nic) throws IOException {
        return "local.type=unix,local.path=" + SegmentHub.nicPlace(nic) + ",remote.type=unix,remote.path=" + SegmentHub.framesPlace(hubPort);
    }

    /** Removes a NIC's socket file once its QEMU is gone (QEMU leaves it behind). */
    public static void remove(int nic) {
        try {
            Path place = SegmentHub.nicPlace(nic);
            Files.deleteIfExists(place);
        } catch (IOException ignored) {
            // a file in a temporary directory: left for the next cleanup
        }
    }

    /**
     * Makes NIC {@code nic} the one NIC of {@code mac} on the hub of segment {@code hubPort}; returns once the hub has
     * done it, or throws with the hub's reason.
     */
    public static void attach(int hubPort, String mac, int nic) throws IOException {
        HubControl.request(hubPort, "attach " + mac + " " + nic);
    }

    /** Takes {@code mac}'s NIC {@code nic} off the hub, unless another NIC (a copy that replaced it) holds the MAC now. */
    public static void detach(int hubPort, String mac, int nic) throws IOException {
        HubControl.request(hubPort, "detach " + mac + " " + nic);
    }
}
