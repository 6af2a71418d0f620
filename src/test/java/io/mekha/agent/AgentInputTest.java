package io.mekha.agent;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.api.AgentDtos.ExecRequest;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.AgentDtos.ReplicateRequest;
import io.mekha.agent.api.ErrorKind;
import io.mekha.model.VmSpec;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14, item 14: the agent's API refuses durations, instants, hosts and URIs it must not act on, with an error that
 * says what to fix, before anything happens (fake VMs: nothing here needs QEMU).
 */
@Tag("fast")
@Tag("security")
class AgentInputTest {
    @TempDir
    Path work;

    private static PrepareRequest prepare(Duration maxLive, Duration pauseDeadline) {
        return new PrepareRequest(List.of("vm1"), "MTD", maxLive, null, pauseDeadline, Map.of(), null);
    }

    @Test
    void durationsMustBePositiveAndBounded() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1")) {
            refused(() -> node.agent.prepare("cp", prepare(null, Duration.ofDays(365))), "pauseDeadline must be more than 0 and at most PT10M");
            refused(() -> node.agent.prepare("cp", prepare(null, Duration.ofSeconds(-1))), "pauseDeadline must be more than 0");
            refused(() -> node.agent.prepare("cp", prepare(Duration.ZERO, null)), "maxLive must be more than 0");
            refused(() -> node.agent.exec("vm1", new ExecRequest(List.of("true"), null, Duration.ofDays(2))), "timeout must be more than 0");
        }
    }

    @Test
    void rendezvousInstantsMustBeGivenAndNearTheAgentsClock() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1")) {
            node.agent.prepare("cp", prepare(null, null));
            refused(() -> node.agent.suspend("cp", null), "the suspend's instant (Ts) is required");
            refused(() -> node.agent.suspend("cp", Instant.now().plus(Duration.ofHours(1))), "is too far from the agent's clock");
            refused(() -> node.agent.suspend("cp", Instant.now().minus(Duration.ofHours(1))), "re-read the agent's time");
            refused(() -> node.agent.resume("cp", Instant.EPOCH), "the resume's instant (Tr)");
            refused(() -> node.agent.restart("cp", Instant.now().plus(Duration.ofDays(1)), null, null), "the restart's instant");
            node.agent.abort("cp", "test over");
        }
    }

    private static final String KEY = "0123456789abcdef".repeat(4);

    @Test
    void aPartnerCopyTakesOnlyAHostAndAReplicationOnlyATcpUri() throws Exception {
        try (FakeNode node = new FakeNode(work, "vm1")) {
            refused(() -> node.agent.replicate("cp", new ReplicateRequest("vm1", "exec:sh -c 'rm -rf /'", KEY)), "must be tcp:<host>:<port>");
            refused(() -> node.agent.replicate("cp", new ReplicateRequest("vm1", "unix:/run/containerd/containerd.sock", KEY)), "are refused");
            refused(() -> node.agent.replicate("cp", new ReplicateRequest("vm1", "tcp:10.0.0.1:99999", KEY)), "port 99999 is not in 1..65535");
            refused(() -> node.agent.hostPartner("cp", new PartnerShadowRequest("vm1", "n2", VmSpec.named("vm1").build(), "tcg",
                    "0.0.0.0 -incoming exec:id", null, null, null, null, null, KEY)), "listenHost must be a host name or an address");
            refused(() -> node.agent.hostPartner("cp", new PartnerShadowRequest("vm1", "n2", VmSpec.named("vm1").build(), "tcg",
                    "10.0.0.2", null, null, null, null, Duration.ofSeconds(-5), KEY)), "stopLate must be at least 0");
            // no copy travels without its key: the stream between the nodes is TLS over it
            refused(() -> node.agent.hostPartner("cp", new PartnerShadowRequest("vm1", "n2", VmSpec.named("vm1").build(), "tcg",
                    "10.0.0.2", null, null, null, null, null, null)), "a partner copy needs its 'key'");
            refused(() -> node.agent.replicate("cp", new ReplicateRequest("vm1", "tcp:10.0.0.1:4444", "not-a-key")), "a partner copy needs its 'key'");
        }
    }

    private static void refused(ThrowingCallable call, String message) {
        assertThatThrownBy(call).isInstanceOf(AgentException.class).hasMessageContaining(message)
                .satisfies(e -> org.assertj.core.api.Assertions.assertThat(((AgentException) e).kind()).isEqualTo(ErrorKind.INVALID_REQUEST));
    }
}
