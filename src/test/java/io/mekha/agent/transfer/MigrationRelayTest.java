package io.mekha.agent.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The relay between a VM's QEMU and its shadow's, with real unix sockets playing both QEMUs. The case CI found: a
 * stopped VM switches over without the acknowledgement, so the shadow may load everything, send its last return-path
 * messages (RP_SHUT) and close before the agent releases the held messages; the source must still read those messages
 * before the end of its return path (QEMU fails the migration otherwise: "Channel error: Input/output error").
 */
@Tag("fast")
class MigrationRelayTest {
    @TempDir
    Path work;

    @Test
    void whatTheShadowSaidBeforeClosingReachesTheSourceBeforeTheEndEvenWhenTheReleaseComesLate() throws Exception {
        Path shadowSocket = work.resolve("shadow.sock");
        try (ServerSocketChannel shadowServer = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            shadowServer.bind(UnixDomainSocketAddress.of(shadowSocket));
            try (MigrationRelay relay = new MigrationRelay(work.resolve("relay.sock"), shadowSocket);
                 SocketChannel source = SocketChannel.open(UnixDomainSocketAddress.of(relay.path()))) {
                try (SocketChannel shadow = shadowServer.accept()) {
                    source.write(ByteBuffer.wrap("STATE".getBytes(StandardCharsets.UTF_8)));
                    ByteBuffer got = ByteBuffer.allocate(5);
                    while (got.hasRemaining()) {
                        shadow.read(got);
                    }
                    assertThat(new String(got.array(), StandardCharsets.UTF_8)).isEqualTo("STATE");
                    shadow.write(ByteBuffer.wrap("ACK+SHUT".getBytes(StandardCharsets.UTF_8)));
                } // the shadow loaded everything and closed: all before the release
                Thread.sleep(200); // (the return path's thread has read the shadow's end by now; the assertion does not depend on it)
                relay.release();

                ByteArrayOutputStream heard = new ByteArrayOutputStream();
                ByteBuffer buffer = ByteBuffer.allocate(64);
                while (source.read(buffer) >= 0) {
                    heard.write(buffer.array(), 0, buffer.position());
                    buffer.clear();
                }
                assertThat(heard.toString(StandardCharsets.UTF_8)).as("the source's return path, up to its end").isEqualTo("ACK+SHUT");
            }
        }
    }
}
