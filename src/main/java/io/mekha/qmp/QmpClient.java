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
import java.time.Instant;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A client for the QEMU Machine Protocol over a unix socket: greeting and capability
 * negotiation, numbered commands with replies routed by id, events fanned out to listener
 * queues, QEMU's errors as {@link QmpCommandError}, a timeout on every wait, and every pending
 * call failed with {@link QmpDisconnectedException} when the connection ends.
 *
 * <p>Shaped after QEMU's own python/qemu/qmp. Knows nothing of Mekha.
 */
public final class QmpClient implements AutoCloseable {

    /** Where the connection is in its life. Transitions only move forward. */
    public enum State { CONNECTING, RUNNING, DISCONNECTING, CLOSED }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration POLL = Duration.ofMillis(20);

    private final String peer;
    private final Path socket;
    private final SocketChannel channel;
    private final Duration defaultTimeout;
    private final AtomicReference<State> state = new AtomicReference<>(State.CONNECTING);
    private final AtomicLong ids = new AtomicLong();
    private final Map<String, Pending> pending = new ConcurrentHashMap<>();
    private final Set<String> abandoned = ConcurrentHashMap.newKeySet();
    private final CopyOnWriteArrayList<QmpEventQueue> listeners = new CopyOnWriteArrayList<>();
    private final CompletableFuture<JsonNode> greeting = new CompletableFuture<>();
    private final Object writeLock = new Object();
    private final Thread reader;
    private volatile QmpException endCause;

    private record Pending(String command, CompletableFuture<JsonNode> reply) {}

    private QmpClient(Path socket, SocketChannel channel, Duration defaultTimeout) {
        this.socket = socket;
        this.peer = socket.toString();
        this.channel = channel;
        this.defaultTimeout = defaultTimeout;
        this.reader = new Thread(this::readLoop, "qmp-reader " + peer);
        this.reader.setDaemon(true);
    }

    /**
     * Connects to the QMP socket at {@code socket}, waiting up to {@code timeout} for it to
     * appear (QEMU creates it while starting), for the greeting and for capability negotiation.
     * {@code defaultTimeout} then bounds every command that does not name its own.
     */
    public static QmpClient connect(Path socket, Duration timeout, Duration defaultTimeout) throws QmpException {
        long deadline = System.nanoTime() + timeout.toNanos();
        SocketChannel channel = openWithRetry(socket, deadline, timeout);
        QmpClient client = new QmpClient(socket, channel, defaultTimeout);
        try {
            client.reader.start();
            client.handshake(deadline, timeout);
            return client;
        } catch (QmpException | RuntimeException e) {
            client.close();
            throw e;
        }
    }

    public static QmpClient connect(Path socket, Duration timeout) throws QmpException {
        return connect(socket, timeout, Duration.ofSeconds(30));
    }

    /**
     * Closes this connection and opens a new one to the same socket, with the same default timeout: for a
     * monitor whose connection broke or stopped answering (QEMU's monitor serves one client at a time and
     * listens again once this one is closed). Event queues stay with the old connection.
     */
    public QmpClient reopen(Duration timeout) throws QmpException {
        close();
        return connect(socket, timeout, defaultTimeout);
    }

    private static SocketChannel openWithRetry(Path socket, long deadline, Duration timeout) throws QmpException {
        IOException last = null;
        do {
            SocketChannel channel = null;
            try {
                channel = SocketChannel.open(StandardProtocolFamily.UNIX);
                channel.connect(UnixDomainSocketAddress.of(socket));
                return channel;
            } catch (IOException e) {
                last = e;
                closeQuietly(channel);
            }
            sleep(POLL);
        } while (System.nanoTime() < deadline);
        throw new QmpTimeoutException("could not connect to QMP socket " + socket + " within " + timeout
                + ": " + (last == null ? "no attempt" : last.getMessage()));
    }

    private void handshake(long deadline, Duration timeout) throws QmpException {
        try {
            greeting.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new QmpTimeoutException("QMP peer " + peer + " accepted the connection but sent no greeting within "
                    + timeout + " (is the process hung or stopped?)");
        } catch (ExecutionException e) {
            throw asQmpException(e.getCause(), "waiting for the QMP greeting");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new QmpDisconnectedException("interrupted waiting for the QMP greeting from " + peer, e);
        }
        execute("qmp_capabilities", null, Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
        state.compareAndSet(State.CONNECTING, State.RUNNING);
    }

    /** The greeting QEMU sent (its version and capabilities). */
    public JsonNode greeting() {
        return greeting.getNow(null);
    }

    public State state() {
        return state.get();
    }

    public String peer() {
        return peer;
    }

    /** Why the connection ended, or null while it is open. */
    public QmpException endCause() {
        return endCause;
    }

    public JsonNode execute(String command) throws QmpException {
        return execute(command, null, defaultTimeout);
    }

    public JsonNode execute(String command, ObjectNode arguments) throws QmpException {
        return execute(command, arguments, defaultTimeout);
    }

    /** Runs one command and returns its {@code return} value, or throws QEMU's error. */
    public JsonNode execute(String command, ObjectNode arguments, Duration timeout) throws QmpException {
        return submit(command, arguments).await(timeout);
    }

    /**
     * Sends one command now and returns without waiting for its reply: for commands that must leave at one instant
     * (the stop at a cut), or several that QEMU takes in order while the caller goes on. Await the reply later.
     */
    public Reply submit(String command, ObjectNode arguments) throws QmpException {
        State now = state.get();
        boolean negotiating = now == State.CONNECTING && command.equals("qmp_capabilities");
        if (now != State.RUNNING && !negotiating) {
            QmpException cause = endCause;
            throw new QmpDisconnectedException("QMP command '" + command + "' not sent to " + peer
                    + ": connection is " + now + (cause == null ? "" : " (" + cause.getMessage() + ")"), cause);
        }
        String id = "mekha-" + ids.incrementAndGet();
        ObjectNode message = JSON.createObjectNode();
        message.put("execute", command);
        if (arguments != null && !arguments.isEmpty()) {
            message.set("arguments", arguments);
        }
        message.put("id", id);
        Pending call = new Pending(command, new CompletableFuture<>());
        pending.put(id, call);
        if (endCause != null) {
            // the reader ended between the state check and the put: fail now, not at timeout
            pending.remove(id);
            throw new QmpDisconnectedException("QMP command '" + command + "' interrupted: " + endCause.getMessage(), endCause);
        }
        send(message);
        return new Reply(id, call);
    }

    /**
     * A command made ready to go: encoded now, sent later by {@link Prepared#send} with nothing left to do but write
     * its bytes (a cut's stop, encoded before Ts, leaves at Ts without the encoder's cost on the way).
     */
    public Prepared prepare(String command, ObjectNode arguments) throws QmpException {
        String id = "mekha-" + ids.incrementAndGet();
        ObjectNode message = JSON.createObjectNode();
        message.put("execute", command);
        if (arguments != null && !arguments.isEmpty()) {
            message.set("arguments", arguments);
        }
        message.put("id", id);
        try {
            return new Prepared(command, id, (JSON.writeValueAsString(message) + "\n").getBytes(StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new QmpProtocolException("cannot encode QMP message", e);
        }
    }

    /** An encoded command waiting to be sent (once). */
    public final class Prepared {
        private final String command;
        private final String id;
        private final byte[] bytes;

        private Prepared(String command, String id, byte[] bytes) {
            this.command = command;
            this.id = id;
            this.bytes = bytes;
        }

        public Reply send() throws QmpException {
            if (state.get() != State.RUNNING) {
                throw new QmpDisconnectedException("QMP command '" + command + "' not sent to " + peer + ": connection is " + state.get(), endCause);
            }
            Pending call = new Pending(command, new CompletableFuture<>());
            pending.put(id, call);
            if (endCause != null) {
                pending.remove(id);
                throw new QmpDisconnectedException("QMP command '" + command + "' interrupted: " + endCause.getMessage(), endCause);
            }
            write(bytes);
            return new Reply(id, call);
        }
    }

    /** The reply to a command sent by {@link #submit}, once it comes. */
    public final class Reply {
        private final String id;
        private final Pending call;

        private Reply(String id, Pending call) {
            this.id = id;
            this.call = call;
        }

        /** Waits for the reply: QEMU's {@code return} value, or its error. */
        public JsonNode await(Duration timeout) throws QmpException {
            try {
                return call.reply().get(timeout.toNanos(), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                pending.remove(id);
                abandoned.add(id);
                throw new QmpTimeoutException("QMP command '" + call.command() + "' to " + peer + " got no reply within " + timeout);
            } catch (ExecutionException e) {
                throw asQmpException(e.getCause(), "QMP command '" + call.command() + "'");
            } catch (InterruptedException e) {
                pending.remove(id);
                abandoned.add(id);
                Thread.currentThread().interrupt();
                throw new QmpDisconnectedException("interrupted waiting for QMP command '" + call.command() + "'", e);
            }
        }

        /** Waits with the client's default timeout. */
        public JsonNode await() throws QmpException {
            return await(defaultTimeout);
        }
    }

    /** Registers a listener for the named events (all events when {@code names} is empty). */
    public QmpEventQueue listen(Set<String> names) {
        QmpEventQueue[] self = new QmpEventQueue[1];
        self[0] = new QmpEventQueue(names, () -> listeners.remove(self[0]));
        listeners.add(self[0]);
        return self[0];
    }

    private void send(ObjectNode message) throws QmpException {
        byte[] bytes;
        try {
            bytes = (JSON.writeValueAsString(message) + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new QmpProtocolException("cannot encode QMP message", e);
        }
        write(bytes);
    }

    private void write(byte[] bytes) throws QmpException {
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        synchronized (writeLock) {
            try {
                while (buffer.hasRemaining()) {
                    channel.write(buffer);
                }
            } catch (IOException e) {
                QmpDisconnectedException cause = new QmpDisconnectedException("writing to QMP peer " + peer + " failed: " + e.getMessage(), e);
                end(cause);
                throw cause;
            }
        }
    }

    private void readLoop() {
        QmpException cause;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (!line.isBlank()) {
                    dispatch(line);
                }
            }
            cause = new QmpDisconnectedException("QMP peer " + peer + " closed the connection", null);
        } catch (QmpException e) {
            cause = e;
        } catch (IOException e) {
            cause = state.get() == State.DISCONNECTING || state.get() == State.CLOSED
                    ? new QmpDisconnectedException("QMP connection to " + peer + " closed by this client", e)
                    : new QmpDisconnectedException("QMP connection to " + peer + " failed: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            cause = new QmpProtocolException("QMP reader for " + peer + " failed: " + e, e);
        }
        end(cause);
    }

    private void dispatch(String line) throws QmpProtocolException {
        JsonNode message;
        try {
            message = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new QmpProtocolException("malformed JSON from QMP peer " + peer + ": " + abbreviate(line), e);
        }
        if (message == null || !message.isObject()) {
            throw new QmpProtocolException("QMP peer " + peer + " sent a non-object: " + abbreviate(line));
        }
        if (message.has("QMP")) {
            greeting.complete(message.get("QMP"));
        } else if (message.has("event")) {
            deliver(message);
        } else if (message.has("return") || message.has("error")) {
            route(message, line);
        } else {
            throw new QmpProtocolException("QMP peer " + peer + " sent an unknown message: " + abbreviate(line));
        }
    }

    private void deliver(JsonNode message) {
        JsonNode ts = message.path("timestamp");
        Instant at = ts.isObject()
                ? Instant.ofEpochSecond(ts.path("seconds").asLong(), ts.path("microseconds").asLong() * 1000)
                : Instant.now();
        QmpEvent event = new QmpEvent(message.get("event").asText(), message.path("data"), at);
        for (QmpEventQueue listener : listeners) {
            if (listener.wants(event)) {
                listener.offer(event);
            }
        }
    }

    private void route(JsonNode message, String line) throws QmpProtocolException {
        String id = message.path("id").asText(null);
        if (id == null) {
            throw new QmpProtocolException("QMP peer " + peer + " sent a reply without an id: " + abbreviate(line));
        }
        Pending call = pending.remove(id);
        if (call == null) {
            if (abandoned.remove(id)) {
                return; // the caller timed out already; its late reply is expected
            }
            throw new QmpProtocolException("QMP peer " + peer + " replied to unknown command id " + id);
        }
        if (message.has("error")) {
            JsonNode error = message.get("error");
            call.reply().completeExceptionally(new QmpCommandError(call.command(),
                    error.path("class").asText("Unknown"), error.path("desc").asText("")));
        } else {
            call.reply().complete(message.get("return"));
        }
    }

    private void end(QmpException cause) {
        synchronized (this) {
            if (endCause != null) {
                return;
            }
            endCause = cause;
            state.set(State.DISCONNECTING);
        }
        closeQuietly(channel);
        state.set(State.CLOSED); // before failing callers, so that they see the connection closed
        greeting.completeExceptionally(cause);
        for (String id : pending.keySet()) {
            Pending call = pending.remove(id);
            if (call != null) {
                call.reply().completeExceptionally(cause);
            }
        }
    }

    @Override
    public void close() {
        if (endCause == null) {
            state.compareAndSet(State.CONNECTING, State.DISCONNECTING);
            state.compareAndSet(State.RUNNING, State.DISCONNECTING);
            end(new QmpDisconnectedException("QMP connection to " + peer + " closed by this client", null));
        }
        if (Thread.currentThread() != reader) {
            try {
                reader.join(Duration.ofSeconds(2).toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static QmpException asQmpException(Throwable cause, String during) {
        if (cause instanceof QmpCommandError error) {
            return new QmpCommandError(error.command(), error.errorClass(), error.description());
        }
        if (cause instanceof QmpProtocolException e) {
            return new QmpProtocolException(during + " interrupted: " + e.getMessage(), e);
        }
        String message = cause == null ? "unknown cause" : cause.getMessage();
        return new QmpDisconnectedException(during + " interrupted: " + message, cause);
    }

    private static String abbreviate(String line) {
        return line.length() <= 120 ? line : line.substring(0, 117) + "...";
    }

    private static void closeQuietly(SocketChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // closing is best effort; the reader reports the end
            }
        }
    }

    private static void sleep(Duration d) throws QmpException {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new QmpDisconnectedException("interrupted while connecting", e);
        }
    }

    /** A JSON object builder for command arguments. */
    public static ObjectNode args() {
        return JSON.createObjectNode();
    }
}
