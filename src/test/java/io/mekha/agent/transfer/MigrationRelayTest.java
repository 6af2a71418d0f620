package io.mekha.agent.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The relay passes the migration stream at once and the return path only after release, in order. */
@Tag("fast")
class MigrationRelayTest {
    @TempDir
    Path dir;

    @Test
    void theStreamFlowsAndTheReturnPathWaitsForTheRelease() throws Exception {
        Path shadowSocket = dir.resolve("shadow.sock");
        try (ServerSocketChannel shadowServer = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            shadowServer.bind(UnixDomainSocketAddress.of(shadowSocket));
            try (MigrationRelay relay = new MigrationRelay(dir.resolve("relay.sock"), shadowSocket);
                 SocketChannel source = SocketChannel.open(UnixDomainSocketAddress.of(relay.path()));
                 SocketChannel shadow = shadowServer.accept()) {
                source.write(utf8("stream-bytes"));
                assertThat(read(shadow, 12)).isEqualTo("stream-bytes");

                shadow.write(utf8("ACK1"));
                shadow.write(utf8("ACK2"));
                CompletableFuture<String> returned = CompletableFuture.supplyAsync(() -> {
                    try {
                        return read(source, 8);
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                Thread.sleep(300);
                assertThat(returned).as("held until the release").isNotDone();
                relay.release();
                assertThat(returned.get(5, TimeUnit.SECONDS)).isEqualTo("ACK1ACK2");

                shadow.write(utf8("SHUT"));
                assertThat(read(source, 4)).as("after the release, messages pass straight through").isEqualTo("SHUT");
            }
        }
    }

    private static ByteBuffer utf8(String text) {
        return ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
    }

    private static String read(SocketChannel channel, int bytes) throws Exception {
        ByteBuffer buffer = ByteBuffer.allocate(bytes);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                break;
            }
        }
        return new String(buffer.array(), 0, buffer.position(), StandardCharsets.UTF_8);
    }
}
