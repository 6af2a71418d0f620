package io.mekha.agent;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A QMP monitor that answers like an idle, running QEMU (greeting, {@code query-status} running, an empty return for
 * anything else), so that agent rooms can be driven without a QEMU behind them.
 */
final class FakeMonitor implements AutoCloseable {
    private static final Pattern ID = Pattern.compile("\"id\"\\s*:\\s*(\"[^\"]*\"|\\d+)");
    private final Path path;
    private final ServerSocketChannel server;

    FakeMonitor(Path path) throws IOException {
        this.path = path;
        Files.deleteIfExists(path);
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        Thread acceptor = new Thread(this::accept, "fake-monitor");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    Path path() {
        return path;
    }

    private void accept() {
        while (server.isOpen()) {
            try {
                SocketChannel client = server.accept();
                Thread t = new Thread(() -> serve(client), "fake-monitor-client");
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                return;
            }
        }
    }

    private static void serve(SocketChannel client) {
        try (client; OutputStream out = Channels.newOutputStream(client)) {
            out.write("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 10}, \"package\": \"fake\"}, \"capabilities\": []}}\n"
                    .getBytes(StandardCharsets.UTF_8));
            BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(client), StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                Matcher id = ID.matcher(line);
                String ret = line.contains("query-status") ? "{\"status\": \"running\", \"running\": true}" : "{}";
                out.write(("{\"return\": " + ret + (id.find() ? ", \"id\": " + id.group(1) : "") + "}\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
        } catch (IOException e) {
            // the client went away
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        Files.deleteIfExists(path);
    }
}
