package io.mekha.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The QMP client's protocol handling, against a scripted fake monitor. */
@Tag("fast")
class QmpClientTest {

    @TempDir
    Path dir;

    private QmpClient connected(FakeQmpServer server) throws Exception {
        CompletableFuture<QmpClient> client = CompletableFuture.supplyAsync(() -> {
            try {
                return QmpClient.connect(server.path(), Duration.ofSeconds(5), Duration.ofSeconds(5));
            } catch (QmpException e) {
                throw new RuntimeException(e);
            }
        });
        server.acceptCapabilities();
        return client.get();
    }

    @Test
    void handshakeNegotiatesCapabilitiesAndKeepsTheGreeting() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("qmp.sock"), true);
             QmpClient client = connected(server)) {
            assertThat(client.state()).isEqualTo(QmpClient.State.RUNNING);
            assertThat(client.greeting().path("version").path("qemu").path("major").asInt()).isEqualTo(10);
        }
    }

    @Test
    void repliesAreRoutedByIdEvenOutOfOrder() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("qmp.sock"), true);
             QmpClient client = connected(server)) {
            CompletableFuture<JsonNode> first = CompletableFuture.supplyAsync(() -> call(client, "query-status"));
            String firstId = server.nextId();
            CompletableFuture<JsonNode> second = CompletableFuture.supplyAsync(() -> call(client, "query-version"));
            String secondId = server.nextId();

            server.send("{\"return\": {\"answer\": \"second\"}, \"id\": \"" + secondId + "\"}");
            server.send("{\"return\": {\"answer\": \"first\"}, \"id\": \"" + firstId + "\"}");

            assertThat(first.get().path("answer").asText()).isEqualTo("first");
            assertThat(second.get().path("answer").asText()).isEqualTo("second");
        }
    }

    @Test
    void submittedCommandsLeaveAtOnceInOrderAndEachReplyIsAwaitedLater() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("qmp.sock"), true);
             QmpClient client = connected(server)) {
            // the cut: a stop and the final pass's parameters go out back to back, no reply waited for in between
            QmpClient.Reply stop = client.submit("stop", null);
            QmpClient.Reply params = client.submit("migrate-set-parameters", QmpClient.args().put("downtime-limit", 600000));
            String stopCommand = server.nextCommand();
            String paramsCommand = server.nextCommand();
            assertThat(stopCommand).contains("\"execute\":\"stop\"");
            assertThat(paramsCommand).contains("migrate-set-parameters").contains("600000");
            String paramsId = java.util.regex.Pattern.compile("\"id\":\"([^\"]+)\"").matcher(paramsCommand).results().findFirst()
                    .orElseThrow().group(1);
            String stopId = java.util.regex.Pattern.compile("\"id\":\"([^\"]+)\"").matcher(stopCommand).results().findFirst()
                    .orElseThrow().group(1);
            server.send("{\"return\": {}, \"id\": \"" + paramsId + "\"}");
            server.send("{\"error\": {\"class\": \"GenericError\", \"desc\": \"not now\"}, \"id\": \"" + stopId + "\"}");
            assertThat(params.await(Duration.ofSeconds(2))).isNotNull();
            assertThatThrownBy(() -> stop.await(Duration.ofSeconds(2))).isInstanceOf(QmpException.class).hasMessageContaining("not now");
            // a reply that never comes times out, as execute does
            QmpClient.Reply silent = client.submit("query-status", null);
            server.nextCommand();
            assertThatThrownBy(() -> silent.await(Duration.ofMillis(100))).isInstanceOf(QmpException.class).hasMessageContaining("no reply");
        }
    }

    @Test
    void eventsInterleavedWithRepliesReachOnlyTheListenersThatAskedForThem() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("qmp.sock"), true);
             QmpClient client = connected(server)) {
            QmpEventQueue stops = client.listen(Set.of("STOP"));
            QmpEventQueue all = client.listen(Set.of());
            CompletableFuture<JsonNode> reply = CompletableFuture.supplyAsync(() -> call(client, "stop"));
            String id = server.nextId();
            server.send("{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250000}, \"event\": \"STOP\"}");
            server.send("{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 0}, \"event\": \"RESUME\"}");
            server.send("{\"return\": {}, \"id\": \"" + id + "\"}");

            assertThat(reply.get()).isNotNull();
            QmpEvent stop = stops.poll(Duration.ofSeconds(2));
            assertThat(stop.name()).isEqualTo("STOP");
            assertThat(stop.timestamp().toEpochMilli()).isEqualTo(1_700_000_000_250L);
            assertThat(stops.poll(Duration.ofMillis(200))).as("RESUME is not for the STOP listener").isNull();
            assertThat(all.poll(Duration.ofSeconds(2)).name()).isEqualTo("STOP");
            assertThat(all.poll(Duration.ofSeconds(2)).name()).isEqualTo("RESUME");
        }
    }

    @Test
    void qemuErrorsCarryTheirClassAndDescription() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("qmp.sock"), true);
             QmpClient client = connected(server)) {
            CompletableFuture<JsonNode> reply = CompletableFuture.supplyAsync(() -> call(client, "no-such-command"));
            String id = server.nextId();
            server.send("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command no-such-command has not been found\"}, \"id\": \"" + id + "\"}");

            assertThatThrownBy(reply::join).cause().cause()
                    .isInstanceOfSatisfying(QmpCommandError.class, e -> {
                        assertThat(e.errorClass()).isEqualTo("CommandNotFound");
                        assertThat(e.description()).contains("has not been found");
                        assertThat(e.command()).isEqualTo("no-such-command");
                    });
            assertThat(client.state()).as("an error reply does not end the connection").isEqualTo(QmpClient.State.RUNNING);
        }
    }

    @Test
    void malformedJsonFailsThePendingCallWithAProtocolErrorAndEndsTheConnection() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("qmp.sock"), true);
             QmpClient client = connected(server)) {
            CompletableFuture<JsonNode> reply = CompletableFuture.supplyAsync(() -> call(client, "query-status"));
            server.nextId();
            server.send("{\"return\": {\"status\": \"running\"");   // a line cut short: not JSON

            assertThatThrownBy(reply::join).cause().cause()
                    .isInstanceOf(QmpProtocolException.class)
                    .hasMessageContaining("malformed JSON");
            assertThat(client.state()).isEqualTo(QmpClient.State.CLOSED);
            assertThatThrownBy(() -> client.execute("query-status"))
                    .isInstanceOf(QmpDisconnectedException.class)
                    .hasMessageContaining("not sent");
        }
    }

    @Test
    void aDisconnectMidCommandFailsEveryPendingCallAsInterrupted() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("qmp.sock"), true);
             QmpClient client = connected(server)) {
            CompletableFuture<JsonNode> a = CompletableFuture.supplyAsync(() -> call(client, "query-migrate"));
            CompletableFuture<JsonNode> b = CompletableFuture.supplyAsync(() -> call(client, "query-status"));
            server.nextId();
            server.nextId();
            server.disconnect();

            for (CompletableFuture<JsonNode> call : java.util.List.of(a, b)) {
                assertThatThrownBy(call::join).cause().cause()
                        .isInstanceOf(QmpDisconnectedException.class)
                        .hasMessageContaining("interrupted")
                        .hasMessageContaining("closed the connection");
            }
            assertThat(client.endCause()).isNotNull();
        }
    }

    @Test
    void aMonitorThatNeverGreetsTimesOutWithAClearMessage() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("silent.sock"), false)) {
            long start = System.nanoTime();
            assertThatThrownBy(() -> QmpClient.connect(server.path(), Duration.ofMillis(500)))
                    .isInstanceOf(QmpTimeoutException.class)
                    .hasMessageContaining("no greeting")
                    .hasMessageContaining(server.path().toString());
            assertThat(Duration.ofNanos(System.nanoTime() - start)).as("gave up at its timeout").isLessThan(Duration.ofSeconds(5));
        }
    }

    @Test
    void aMissingSocketTimesOutNamingThePath() {
        Path missing = dir.resolve("nothing-here.sock");
        assertThatThrownBy(() -> QmpClient.connect(missing, Duration.ofMillis(200)))
                .isInstanceOf(QmpTimeoutException.class)
                .hasMessageContaining(missing.toString());
    }

    @Test
    void aCommandWithoutReplyTimesOutAndItsLateReplyIsIgnored() throws Exception {
        try (FakeQmpServer server = new FakeQmpServer(dir.resolve("qmp.sock"), true);
             QmpClient client = connected(server)) {
            CompletableFuture<JsonNode> slow = CompletableFuture.supplyAsync(() -> {
                try {
                    return client.execute("query-status", null, Duration.ofMillis(200));
                } catch (QmpException e) {
                    throw new RuntimeException(e);
                }
            });
            String lateId = server.nextId();
            assertThatThrownBy(slow::join).cause().cause()
                    .isInstanceOf(QmpTimeoutException.class)
                    .hasMessageContaining("no reply within");

            server.send("{\"return\": {}, \"id\": \"" + lateId + "\"}");
            CompletableFuture<JsonNode> next = CompletableFuture.supplyAsync(() -> call(client, "query-version"));
            String id = server.nextId();
            server.send("{\"return\": {\"ok\": true}, \"id\": \"" + id + "\"}");
            assertThat(next.get().path("ok").asBoolean()).isTrue();
            assertThat(client.state()).isEqualTo(QmpClient.State.RUNNING);
        }
    }

    private static JsonNode call(QmpClient client, String command) {
        try {
            return client.execute(command);
        } catch (QmpException e) {
            throw new RuntimeException(e);
        }
    }
}
