package io.mekha.agent.network;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Only the hub's user and root steer a segment: a stranger's attach is refused, with the reason. */
@Tag("fast")
@Tag("security")
class HubControlTest {

    @Test
    void theHubsUserAttachesAndDetachesAndIsToldWhenARequestIsBad() throws Exception {
        try (SegmentHub hub = SegmentHub.open("lan", 0)) {
            SegmentPort.attach(hub.port(), "52:54:00:AA:00:01", 40001);
            assertThat(hub.attached()).containsOnlyKeys("52:54:00:aa:00:01");
            assertThatThrownBy(() -> SegmentPort.attach(hub.port(), "not-a-mac", 40002))
                    .hasMessageContaining("'not-a-mac' is not a MAC address");
            assertThatThrownBy(() -> SegmentPort.attach(hub.port(), "52:54:00:aa:00:02", 70000))
                    .hasMessageContaining("'70000' is not a UDP port");
            // a copy that took the MAC's place is not detached by the old NIC going away
            SegmentPort.attach(hub.port(), "52:54:00:aa:00:01", 40003);
            SegmentPort.detach(hub.port(), "52:54:00:aa:00:01", 40001);
            assertThat(hub.attached()).containsOnlyKeys("52:54:00:aa:00:01");
            SegmentPort.detach(hub.port(), "52:54:00:aa:00:01", 40003);
            assertThat(hub.attached()).isEmpty();
        }
    }

    @Test
    void aDatagramToTheHubsPortAttachesNothing() throws Exception {
        try (SegmentHub hub = SegmentHub.open("lan", 0); DatagramChannel stranger = DatagramChannel.open()) {
            stranger.bind(new InetSocketAddress("127.0.0.1", 0));
            int strangerPort = ((InetSocketAddress) stranger.getLocalAddress()).getPort();
            byte[] oldControl = ("MEKHA-HUB:attach 52:54:00:aa:00:01 " + strangerPort).getBytes(StandardCharsets.US_ASCII);
            stranger.send(ByteBuffer.wrap(oldControl), new InetSocketAddress("127.0.0.1", hub.port()));
            // the drop counter is the event: the datagram was read and not taken as a request
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (hub.framesDropped() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(hub.framesDropped()).isEqualTo(1);
            assertThat(hub.attached()).isEmpty();
        }
    }

    @Test
    void anotherUserIsRefusedByTheDirectoryAndThenByThePeersCredentials(@org.junit.jupiter.api.io.TempDir Path work) throws Exception {
        assumeTrue(System.getProperty("user.name").equals("root"), "needs root to run a process as another user");
        Path client = work.resolve("client");
        Files.createDirectories(client);
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(client, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path source = client.resolve("Attach.java");
        Files.writeString(source, """
                import java.net.UnixDomainSocketAddress;
                import java.nio.ByteBuffer;
                import java.nio.channels.SocketChannel;
                public class Attach {
                    public static void main(String[] args) throws Exception {
                        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(args[0]))) {
                            c.write(ByteBuffer.wrap((args[1] + "\\n").getBytes()));
                            c.shutdownOutput();
                            ByteBuffer reply = ByteBuffer.allocate(512);
                            while (c.read(reply) > 0) { }
                            System.out.print(new String(reply.array(), 0, reply.position()));
                        } catch (Exception e) {
                            System.out.print("failed " + e.getMessage());
                        }
                    }
                }
                """);
        Files.setPosixFilePermissions(source, PosixFilePermissions.fromString("rw-r--r--"));
        try (SegmentHub hub = SegmentHub.open("lan", 0)) {
            Path socket = HubControl.place(hub.port());
            String request = "attach 52:54:00:aa:00:01 40001";

            assertThat(asNobody(source, socket, request)).as("the owner-only directory keeps it out").contains("failed");
            assertThat(hub.attached()).isEmpty();

            // were the directory and socket opened up, the peer's credentials still refuse it
            Path dir = socket.getParent();
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rwxrwxrwx"));
            try {
                assertThat(asNobody(source, socket, request)).startsWith("error user nobody may not control this segment");
            } finally {
                Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            }
            assertThat(hub.attached()).isEmpty();
        }
    }

    private static String asNobody(Path source, Path socket, String request) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process process = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                java, "-XX:-UsePerfData", source.toString(), socket.toString(), request)
                .redirectErrorStream(true).start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return out;
    }
}
