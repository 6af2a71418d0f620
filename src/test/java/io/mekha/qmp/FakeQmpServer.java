package io.mekha.qmp;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A scriptable stand-in for QEMU's monitor on a unix socket, for testing the QMP client's
 * protocol handling: the test reads what the client sent and writes whatever it likes back,
 * including garbage, and can drop the connection at any point.
 */
final class FakeQmpServer implements AutoCloseable {
    static final String GREETING = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 10}, \"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}";

    private final ServerSocketChannel server;
    private final Path path;
    private final BlockingQueue<String> received = new LinkedBlockingQueue<>();
    private volatile SocketChannel client;
    private final Thread acceptor;

    FakeQmpServer(Path path, boolean greet) throws IOException {
        this.path = path;
        this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        acceptor = new Thread(() -> serve(greet), "fake-qmp");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    Path path() {
        return path;
    }

    private void serve(boolean greet) {
        try {
            client = server.accept();
            if (greet) {
                send(GREETING);
            }
            BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(client), StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                received.add(line);
            }
        } catch (IOException e) {
            // the test closed the connection
        }
    }

    /** The next message the client sent, as raw JSON text. */
    String nextCommand() throws InterruptedException {
        String line = received.poll(5, TimeUnit.SECONDS);
        if (line == null) {
            throw new AssertionError("the client sent nothing within 5 s");
        }
        return line;
    }

    /** Reads the next command and returns its id. */
    String nextId() throws InterruptedException {
        String line = nextCommand();
        var m = java.util.regex.Pattern.compile("\"id\"\\s*:\\s*\"([^\"]+)\"").matcher(line);
        if (!m.find()) {
            throw new AssertionError("command without id: " + line);
        }
        return m.group(1);
    }

    /** Answers qmp_capabilities, completing the client's handshake. */
    void acceptCapabilities() throws Exception {
        String id = nextId();
        send("{\"return\": {}, \"id\": \"" + id + "\"}");
    }

    void send(String text) throws IOException {
        while (client == null) {
            Thread.onSpinWait();
        }
        ByteBuffer buffer = ByteBuffer.wrap((text + "\r\n").getBytes(StandardCharsets.UTF_8));
        while (buffer.hasRemaining()) {
            client.write(buffer);
        }
    }

    /** Drops the connection, as a crashing QEMU would. */
    void disconnect() throws IOException {
        if (client != null) {
            client.close();
        }
    }

    @Override
    public void close() throws IOException {
        disconnect();
        server.close();
    }
}
