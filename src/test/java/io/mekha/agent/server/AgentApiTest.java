package io.mekha.agent.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointFailedException;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.ClockOffset;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.ProtocolListener;
import io.mekha.storage.StorageLevel;
import java.net.InetSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent's HTTP API without VMs: authentication, refusals and their messages. */
@Tag("fast")
class AgentApiTest {

    @TempDir
    Path work;

    private final BearerToken token = BearerToken.random();
    private AgentService agent;
    private AgentHttpServer server;

    @BeforeEach
    void start() throws Exception {
        agent = new AgentService("n1", new LocalVmRuntime(RuntimeConfig.defaults(work)), new RendezvousClock(Clock.systemUTC()));
        server = new AgentHttpServer(agent, token, new InetSocketAddress("127.0.0.1", 0)).start();
    }

    @AfterEach
    void stop() {
        server.close();
        agent.close();
    }

    private AgentClient client(String authorization) {
        return new AgentClient("n1", server.uri(), authorization, Duration.ofSeconds(5));
    }

    @Test
    void aRequestWithoutTheTokenIsRefusedAndSaysWhatIsMissing() {
        assertThatThrownBy(() -> client(null).vms())
                .isInstanceOfSatisfying(AgentCallException.class, e -> assertThat(e.status()).isEqualTo(401))
                .hasMessageContaining("unauthenticated")
                .hasMessageContaining("Authorization: Bearer");
    }

    @Test
    void aRequestWithAWrongTokenIsRefused() {
        assertThatThrownBy(() -> client(BearerToken.random().header()).prepare("cp1", null))
                .isInstanceOfSatisfying(AgentCallException.class, e -> assertThat(e.status()).isEqualTo(401));
    }

    @Test
    void theRightTokenIsAcceptedAndTheClockCanBeRead() throws Exception {
        AgentClient client = client(token.header());
        assertThat(client.vms()).isEmpty();
        ClockOffset offset = ClockOffset.estimate(client, Clock.systemUTC(), 3);
        assertThat(offset.offset().abs()).as("same host, same clock").isLessThan(Duration.ofMillis(50));
    }

    @Test
    void progressIsForTheTokenHolderOnlyAndEmptyForACheckpointWithNoTransfers() throws Exception {
        assertThatThrownBy(() -> client(null).progress("cp1"))
                .isInstanceOfSatisfying(AgentCallException.class, e -> assertThat(e.status()).isEqualTo(401));
        assertThat(client(token.header()).progress("cp1")).isEmpty();
        assertThatThrownBy(() -> client(token.header()).progress("-rf"))
                .isInstanceOfSatisfying(AgentCallException.class, e -> assertThat(e.status()).isEqualTo(400));
    }

    @Test
    void malformedBodiesAndUnknownCheckpointsGetClearErrors() throws Exception {
        HttpResponse<String> response = HttpClient.newHttpClient().send(HttpRequest.newBuilder(server.uri().resolve("/v1/checkpoints/cp1/prepare"))
                .header("Authorization", token.header())
                .POST(HttpRequest.BodyPublishers.ofString("{\"vms\": [\"vm1\"], \"mdoe\": \"MTD\"}")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(400);
        assertThat(response.body()).contains("mdoe");
        assertThatThrownBy(() -> client(token.header()).status("nope"))
                .isInstanceOfSatisfying(AgentCallException.class, e -> assertThat(e.status()).isEqualTo(404))
                .hasMessageContaining("no checkpoint nope on node n1");
    }

    @Test
    void storageRequestsSayWhatIsMissingOrWrong() {
        AgentClient client = client(token.header());
        assertThatThrownBy(() -> client.flush("cp1", new FlushRequest("vm1", "vc", StorageLevel.L2, null, null, null, null, null, null),
                Duration.ofSeconds(10))).hasMessageContaining("level L2 needs a 'target'");
        assertThatThrownBy(() -> client.flush("cp1", new FlushRequest("vm1", "vc", StorageLevel.L1, null, null, "lz4", null, null, null),
                Duration.ofSeconds(10))).hasMessageContaining("unknown compression 'lz4': use none or zstd");
        assertThatThrownBy(() -> client.flush("cp1", new FlushRequest("vm1", "../x", StorageLevel.L1, null, null, null, null, null, null),
                Duration.ofSeconds(10))).hasMessageContaining("virtual cluster '../x'");
        assertThatThrownBy(() -> client.flush("cp1", new FlushRequest("vm1", "vc", StorageLevel.L1, null, null, null, null, null, null),
                Duration.ofSeconds(10))).hasMessageContaining("no checkpoint cp1 of VM 'vm1' in memory on node n1");
        assertThatThrownBy(() -> client.readManifest(new StoredRequest(StorageLevel.L1, null, "vc", "cp1")))
                .isInstanceOfSatisfying(AgentCallException.class, e -> assertThat(e.status()).isEqualTo(404))
                .hasMessageContaining("no complete checkpoint cp1 of vc at L1 on node n1");
        assertThatThrownBy(() -> client.verifyStored(new StoredVmsRequest(StorageLevel.L1, null, null, List.of("vm1"))))
                .hasMessageContaining("needs the checkpoint's 'manifest'");
        assertThatThrownBy(() -> client.hostPartner("cp1", new PartnerShadowRequest("vm1", "n2", null, "TCG", null, null, null, null, null, null, null)))
                .hasMessageContaining("needs 'vm', 'spec' and 'listenHost'");
    }

    @Test
    void aCheckpointNamingAnUnknownVmIsRefusedListingWhatRunsWhere() {
        try (Coordinator coordinator = new Coordinator(List.of(client(token.header())), Clock.systemUTC())) {
            assertThatThrownBy(() -> coordinator.checkpoint("cp1", List.of("vm9"), CheckpointOptions.defaults(), ProtocolListener.NONE))
                    .isInstanceOf(CheckpointFailedException.class)
                    .hasMessageContaining("unknown VM 'vm9'")
                    .hasMessageContaining("n1=[]");
        }
    }

    @Test
    void duplicateVmNamesInACheckpointAreRefused() {
        try (Coordinator coordinator = new Coordinator(List.of(client(token.header())), Clock.systemUTC())) {
            assertThatThrownBy(() -> coordinator.checkpoint("cp1", List.of("vm1", "vm1"), CheckpointOptions.defaults(), ProtocolListener.NONE))
                    .isInstanceOf(CheckpointFailedException.class)
                    .hasMessageContaining("'vm1' is named twice");
        }
    }

    @Test
    void aTokenFileReadableByOthersIsRefused() throws Exception {
        Path file = work.resolve("token");
        token.write(file);
        assertThat(BearerToken.read(file)).isEqualTo(token);
        Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        assertThatThrownBy(() -> BearerToken.read(file)).hasMessageContaining("chmod 600");
    }
}
