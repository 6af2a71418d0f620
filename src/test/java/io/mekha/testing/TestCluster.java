package io.mekha.testing;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.network.SegmentHub;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.local.RingCluster;
import io.mekha.local.RingReference;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.Coordinator;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A local virtual cluster for tests: a ring of VMs on one segment, spread over two agents —
 * node n1 in this JVM and node n2 in a process of its own — and a coordinator that reaches both
 * over authenticated HTTP.
 */
public final class TestCluster implements AutoCloseable {
    public static final int NODES = 3;

    public final SegmentHub hub;
    /** How agents check callers: the in-process agent's authenticator, the process agent's arguments, the header clients send. */
    /** How the agents check callers, and the Authorization header the test's own clients send to each node's agent. */
    public record Auth(io.mekha.agent.server.AgentAuthenticator inProcess, List<String> processArgs,
                       java.util.function.Function<String, String> headers) {
        public Auth(io.mekha.agent.server.AgentAuthenticator inProcess, List<String> processArgs, String header) {
            this(inProcess, processArgs, node -> header);
        }
    }

    public final BearerToken token = BearerToken.random();
    public final AgentService agent1;
    public final AgentHttpServer server1;
    public final AgentProcess agent2;
    public final AgentClient client1;
    public final AgentClient client2;
    public final Coordinator coordinator;
    public final List<VmSpec> specs;
    public final RingCluster ring;

    /** vm1 and vm2 on n1 (this JVM), vm3 on n2 (its own process), running the ring workload. */
    public TestCluster(Path work, int steps, int intervalMs) throws Exception {
        this(work, new RingCluster(NODES, steps, intervalMs, 16, 4), null, null);
    }

    /** The ring, with agents that check callers as {@code auth} says (Kubernetes identities, say). */
    public TestCluster(Path work, int steps, int intervalMs, Auth auth) throws Exception {
        this(work, new RingCluster(NODES, steps, intervalMs, 16, 4), null, auth);
    }

    /** vm1 and vm2 on n1 (this JVM), vm3 on n2 (its own process), described by {@code specs} (given the segment hub's port). */
    public TestCluster(Path work, java.util.function.IntFunction<List<VmSpec>> specs) throws Exception {
        this(work, null, specs, null);
    }

    private TestCluster(Path work, RingCluster ring, java.util.function.IntFunction<List<VmSpec>> specs, Auth given) throws Exception {
        this.ring = ring;
        hub = SegmentHub.open("lan", 0);
        Path tokenFile = work.resolve("agent.token");
        token.write(tokenFile);
        Auth auth = given != null ? given : new Auth(token, List.of("--token-file", tokenFile.toString()), token.header());
        agent1 = new AgentService("n1", new LocalVmRuntime(RuntimeConfig.defaults(Files.createDirectories(work.resolve("n1")))),
                new RendezvousClock(Clock.systemUTC()));
        server1 = new AgentHttpServer(agent1, auth.inProcess(), new InetSocketAddress("127.0.0.1", 0)).start();
        agent2 = AgentProcess.start("n2", Files.createDirectories(work.resolve("n2")), auth.processArgs());
        client1 = new AgentClient("n1", server1.uri(), auth.headers().apply("n1"), Duration.ofSeconds(30));
        client2 = new AgentClient("n2", agent2.uri(), auth.headers().apply("n2"), Duration.ofSeconds(30));
        coordinator = new Coordinator(List.of(client1, client2), Clock.systemUTC());
        this.specs = ring != null ? TestVcs.ring(ring, hub.port(), 256) : specs.apply(hub.port());
    }

    public void bootAll() throws Exception {
        client1.startVm(specs.get(0));
        client1.startVm(specs.get(1));
        client2.startVm(specs.get(2));
    }

    public List<String> vmNames() {
        return specs.stream().map(VmSpec::name).toList();
    }

    public AgentClient clientOf(String vm) {
        return vm.equals("vm3") ? client2 : client1;
    }

    /** The VM as the node running it now describes it (after a restart on a partner node, that node). */
    public VmInfo info(String vm) throws Exception {
        VmInfo found = null;
        for (AgentClient client : List.of(clientOf(vm), clientOf(vm) == client1 ? client2 : client1)) {
            try {
                for (VmInfo info : client.vms()) {
                    if (info.name().equals(vm) && (found == null || (!found.state().equals("running") && info.state().equals("running")))) {
                        found = info;
                    }
                }
            } catch (io.mekha.protocol.AgentCallException e) {
                if (!e.unreachable()) {
                    throw e;
                }
            }
        }
        if (found == null) {
            throw new AssertionError("no node runs VM '" + vm + "'");
        }
        return found;
    }

    /** The console of the VM's current QEMU. */
    public List<String> console(String vm) throws Exception {
        return Files.readAllLines(Path.of(info(vm).consolePath()));
    }

    public static int node(String vm) {
        return RingCluster.node(vm);
    }

    /** The highest step every VM has printed in its current console. */
    public long minStep() throws Exception {
        long min = Long.MAX_VALUE;
        for (String vm : vmNames()) {
            TreeMap<Long, Long> printed = RingReference.printed(console(vm), node(vm));
            min = Math.min(min, printed.isEmpty() ? 0 : printed.lastKey());
        }
        return min;
    }

    public void awaitStep(long step, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (minStep() < step) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the ring did not reach step " + step + " within " + timeout + " (at " + minStep() + ")");
            }
            Thread.sleep(200);
        }
    }

    public long[][] reference() {
        return ring.reference();
    }

    public int steps() {
        return ring.steps();
    }

    /** Every mismatch between what the VMs printed (in the given consoles) and an uninterrupted run. */
    public List<String> mismatches(Map<String, List<String>> consoles) {
        long[][] reference = reference();
        List<String> out = new ArrayList<>();
        consoles.forEach((vm, lines) -> out.addAll(RingReference.mismatches(RingReference.printed(lines, node(vm)), reference, node(vm))));
        return out;
    }

    /** The last step each VM's console shows, now (before a crash: where each must start again from at most). */
    public Map<String, Long> reachedSteps() throws Exception {
        Map<String, Long> reached = new java.util.LinkedHashMap<>();
        for (String vm : vmNames()) {
            reached.put(vm, RingReference.lastStepReached(String.join("\n", console(vm))));
        }
        return reached;
    }

    /**
     * Waits for the ring to finish after a restart and checks it: every VM started again from the cut or before what it
     * had {@code reached}, finished, broke no connection, and printed exactly an uninterrupted run's sums.
     */
    public void assertFinishesExactly(Map<String, Long> reached, Duration timeout) throws Exception {
        Map<String, List<String>> consoles = awaitRingDone(timeout);
        consoles.forEach((vm, lines) -> {
            var printed = RingReference.printed(lines, node(vm));
            org.assertj.core.api.Assertions.assertThat(printed.firstKey()).as("%s resumed from the cut, not later", vm)
                    .isLessThanOrEqualTo(reached.get(vm) + 1);
            org.assertj.core.api.Assertions.assertThat(printed.lastKey()).as("%s finished the run", vm).isEqualTo(steps());
            org.assertj.core.api.Assertions.assertThat(lines).as("%s: no connection broke", vm).noneMatch(l -> l.contains("RING error"));
        });
        org.assertj.core.api.Assertions.assertThat(mismatches(consoles))
                .withFailMessage(() -> "not every step after the restart equals an uninterrupted run's:%n%s%n%s".formatted(
                        String.join("\n", mismatches(consoles).stream().limit(12).toList()), restartDiagnosis(reached, consoles)))
                .isEmpty();
    }

    /**
     * What a failed exactness check needs to be understood later (a CI log is all there is then): per VM, the step it had
     * reached at the cut, its first step after the restart, the first wrong one, and what its guest printed besides the
     * ring's steps (kernel warnings, say) after the restart.
     */
    private String restartDiagnosis(Map<String, Long> reached, Map<String, List<String>> consoles) {
        long[][] reference = reference();
        StringBuilder out = new StringBuilder();
        consoles.forEach((vm, lines) -> {
            var printed = RingReference.printed(lines, node(vm));
            List<String> wrong = RingReference.mismatches(printed, reference, node(vm));
            out.append(vm).append(" (node ").append(node(vm)).append("): reached ").append(reached.get(vm)).append(" at the cut, first step after the restart ")
                    .append(printed.isEmpty() ? "none" : printed.firstKey()).append(", ").append(wrong.size()).append(" wrong")
                    .append(wrong.isEmpty() ? "" : " from " + wrong.get(0)).append('\n');
            lines.stream().filter(l -> !l.startsWith("RING step=") && !l.isBlank()).limit(20)
                    .forEach(l -> out.append("    | ").append(l).append('\n'));
        });
        return out.toString();
    }

    /** Waits until every VM's current console says the ring is done (or broke); returns the consoles. */
    public Map<String, List<String>> awaitRingDone(Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, List<String>> consoles = new java.util.LinkedHashMap<>();
        for (String vm : vmNames()) {
            while (true) {
                List<String> lines = console(vm);
                if (lines.stream().anyMatch(l -> l.startsWith("RING done") || l.contains("RING error"))) {
                    consoles.put(vm, lines);
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError(vm + " did not finish the ring within " + timeout + "; console tail: "
                            + lines.subList(Math.max(0, lines.size() - 3), lines.size()));
                }
                Thread.sleep(250);
            }
        }
        return consoles;
    }

    @Override
    public void close() throws Exception {
        coordinator.close();
        agent2.close();
        server1.close();
        agent1.close();
        hub.close();
    }
}
