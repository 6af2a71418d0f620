package io.mekha.qmp;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * A client for qemu-guest-agent over the host end of its virtio-serial port. QGA has no greeting
 * and answers one command at a time without ids, and whatever an earlier client left in the
 * channel may still arrive: so every session starts with {@code guest-sync} and a random id,
 * discarding lines until the matching reply. A paused guest never answers: every wait has a timeout.
 */
public final class QgaClient implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String EOF = "\u0000eof";

    private final Path socket;
    private final SocketChannel channel;
    private final LinkedBlockingQueue<String> lines = new LinkedBlockingQueue<>();

    private QgaClient(Path socket, SocketChannel channel) {
        this.socket = socket;
        this.channel = channel;
        Thread reader = new Thread(this::read, "qga-reader " + socket);
        reader.setDaemon(true);
        reader.start();
    }

    /** Connects and synchronises with the agent; fails if it does not answer within {@code timeout}. */
    public static QgaClient connect(Path socket, Duration timeout) throws QmpException {
        SocketChannel channel;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            throw new QmpDisconnectedException("cannot connect to the guest agent socket " + socket + ": " + e.getMessage(), e);
        }
        QgaClient client = new QgaClient(socket, channel);
        try {
            client.sync(timeout);
            return client;
        } catch (QmpException e) {
            client.close();
            throw e;
        }
    }

    private void sync(Duration timeout) throws QmpException {
        long id = ThreadLocalRandom.current().nextLong(1, Integer.MAX_VALUE);
        send("guest-sync", JSON.createObjectNode().put("id", id));
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            JsonNode reply = nextReply(deadline, "guest-sync", timeout);
            if (reply.path("return").asLong(-1) == id) {
                return;
            }
        }
    }

    /** Runs one command and returns its {@code return} value. */
    public synchronized JsonNode execute(String command, ObjectNode arguments, Duration timeout) throws QmpException {
        send(command, arguments);
        JsonNode reply = nextReply(System.nanoTime() + timeout.toNanos(), command, timeout);
        if (reply.has("error")) {
            throw new QmpCommandError(command, reply.path("error").path("class").asText("Unknown"),
                    reply.path("error").path("desc").asText(""));
        }
        return reply.path("return");
    }

    private void send(String command, ObjectNode arguments) throws QmpException {
        ObjectNode message = JSON.createObjectNode().put("execute", command);
        if (arguments != null) {
            message.set("arguments", arguments);
        }
        try {
            ByteBuffer bytes = ByteBuffer.wrap((JSON.writeValueAsString(message) + "\n").getBytes(StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
        } catch (IOException e) {
            throw new QmpDisconnectedException("guest agent at " + socket + ": sending " + command + " failed: " + e.getMessage(), e);
        }
    }

    private JsonNode nextReply(long deadline, String command, Duration timeout) throws QmpException {
        while (true) {
            String line;
            try {
                long left = deadline - System.nanoTime();
                line = left > 0 ? lines.poll(left, TimeUnit.NANOSECONDS) : null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new QmpDisconnectedException("interrupted waiting for the guest agent", e);
            }
            if (line == null) {
                throw new QmpTimeoutException("the guest agent at " + socket + " did not answer " + command + " within " + timeout
                        + " (no agent running in the guest, or the VM is paused)");
            }
            if (line == EOF) {
                throw new QmpDisconnectedException("the guest agent socket " + socket + " closed", null);
            }
            try {
                JsonNode reply = JSON.readTree(line.replace("\u00ff", ""));
                if (reply != null && (reply.has("return") || reply.has("error"))) {
                    return reply;
                }
            } catch (JsonProcessingException e) {
                // leftovers of an earlier session; guest-sync exists to skip them
            }
        }
    }

    private void read() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (!line.isBlank()) {
                    lines.add(line);
                }
            }
        } catch (IOException e) {
            // closed
        }
        lines.add(EOF);
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing to do
        }
    }
}
