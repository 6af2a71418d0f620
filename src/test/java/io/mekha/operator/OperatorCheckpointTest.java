package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.LabelSelectorBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.server.AgentAuthenticator;
import io.mekha.agent.server.TokenReviewAuthenticator;
import io.mekha.api.v1alpha1.CheckpointStorageLocation;
import io.mekha.api.v1alpha1.CheckpointStorageLocationSpec;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.Level2Target;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.LiveStage;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.StorageSpec;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VirtualClusterRestoreSpec;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import io.mekha.testing.CuttableProxy;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestCluster;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operator end to end: CRs applied to the (mock) API server, VMs and instances as KubeVirt
 * would create them, agent pods as the DaemonSet would run them, and behind those pods real
 * agents (one in this JVM, one in its own process) running real QEMU VMs, which check the
 * operator's identity through TokenReview.
 */
@Tag("qemu")
@Tag("faults")
@ExtendWith(NoQemuLeftBehind.class)
class OperatorCheckpointTest {
    static final String NS = "hpc";
    static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path work;
    MockKubernetes kube;
    KubernetesClient client;

    @BeforeEach
    void apiServer() throws Exception {
        kube = new MockKubernetes();
        client = kube.client;
        kube.namespace(NS);
        kube.namespace("other");
    }

    @AfterEach
    void stop() {
        kube.close();
    }

    private TestCluster cluster() throws Exception {
        String kubeApi = kube.url().toString();
        // each agent takes only tokens bound to its own node (n1 in process, n2 as its own process with the default audience)
        AgentAuthenticator inProcess = new TokenReviewAuthenticator(kube.server.createClient(), Set.of(MockKubernetes.OPERATOR_USER),
                List.of(io.mekha.model.AgentAudience.of("n1")), Clock.systemUTC());
        TestCluster vc = new TestCluster(work, 400, 30, new TestCluster.Auth(inProcess,
                List.of("--allow-user", MockKubernetes.OPERATOR_USER, "--kube-api", kubeApi), node -> "Bearer " + MockKubernetes.operatorToken(node)));
        kube.agentPod("n1", vc.client1.base());
        kube.agentPod("n2", vc.client2.base());
        for (String vm : vc.vmNames()) {
            kube.runningVm(NS, vm, vm.equals("vm3") ? "n2" : "n1", Map.of("app", "ring"));
        }
        return vc;
    }

    @Test
    void aCheckpointAppliedToTheApiSucceedsWithRealFiguresAndARestoreRestartsTheVcExactly() throws Exception {
        try (TestCluster vc = cluster(); TestOperator operator = new TestOperator(client, Clock.systemUTC())) {
            vc.bootAll();
            vc.awaitStep(15, RUN);

            // level 2 where the admin's storage location says: a directory every agent reaches
            Path level2 = Files.createDirectories(work.resolve("level2"));
            client.resource(location("shared", level2.toString(), List.of(NS))).create();
            VirtualClusterCheckpoint first = checkpoint("cp1", ringSelector(), List.of(LevelName.L1, LevelName.L2), null);
            first.getSpec().storage.level2 = level2Location("shared");
            VirtualClusterCheckpoint cp = client.resource(first).create();
            await("cp1", c -> c.getStatus().phase == Phase.InProgress, Duration.ofMinutes(1));
            // a second checkpoint of the same VMs waits for the first, and says why
            client.resource(checkpoint("cp2", ringSelector(), null, null)).create();
            VirtualClusterCheckpoint second = await("cp2", c -> c.getStatus() != null && c.getStatus().conditions.stream()
                    .anyMatch(x -> "SourceLocked".equals(x.getReason())), Duration.ofMinutes(1));
            assertThat(second.getStatus().phase).isEqualTo(Phase.Pending);
            assertThat(Conditions.get(second.getStatus().conditions, Conditions.READY).getMessage())
                    .contains("VirtualClusterCheckpoint/cp1").contains("one checkpoint or restore at a time per VM");
            client.resource(second).delete();

            cp = await("cp1", c -> c.getStatus() != null && c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
            var st = cp.getStatus();
            assertThat(st.phase).as(String.valueOf(st.conditions)).isEqualTo(Phase.Succeeded);
            assertThat(st.readyToUse).isTrue();
            assertThat(st.levels).containsExactly(LevelName.L0, LevelName.L1, LevelName.L2);
            try (var stored = Files.walk(level2)) {
                assertThat(stored.filter(Files::isRegularFile).count()).as("files in the storage location's directory").isPositive();
            }
            assertThat(st.vms).extracting(v -> v.name + "@" + v.node).containsExactly("vm1@n1", "vm2@n1", "vm3@n2");
            assertThat(st.vms).allSatisfy(v -> {
                assertThat(v.bytes).isPositive();
                assertThat(v.pausedTime).endsWith("ms");
                assertThat(v.suspendedAt).isNotNull();
                assertThat(v.resumedAt).isNotNull();
            });
            assertThat(st.suspendSkew).isNotNull();
            assertThat(st.resumeSkew).isNotNull();
            assertThat(st.timeToDurable).isNotNull();
            assertThat(Conditions.get(st.conditions, Conditions.READY).getStatus()).isEqualTo("True");
            assertThat(events("cp1")).contains("Started", "Captured", "Flushing", "Succeeded");
            for (String vm : vc.vmNames()) {
                assertThat(events(vm)).as("KubeVirt's view of %s", vm).contains("MekhaCheckpoint");
            }
            assertThat(operator.meters.find("mekha.checkpoints").tag("result", "succeeded").counter().count()).isEqualTo(1.0);
            assertThat(operator.meters.find("mekha.checkpoint.paused").timer().count()).isEqualTo(3);
            // each node's agent says what it holds at level 0 and what its flushes wrote (both nodes hold VMs of the ring)
            for (AgentClient agent : List.of(vc.client1, vc.client2)) {
                String scraped = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(agent.base().resolve("/metrics"))
                        .build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
                assertThat(metric(scraped, "mekha_agent_level0_copies")).as(agent.node()).isPositive();
                assertThat(metric(scraped, "mekha_agent_level0_bytes")).as(agent.node()).isGreaterThan(64 << 20);
                assertThat(metric(scraped, "mekha_agent_level0_room_bytes")).as(agent.node()).isPositive();
                assertThat(metric(scraped, "mekha_agent_flushed_bytes_total{level=\"L1\"}")).as(agent.node()).isPositive();
                assertThat(metric(scraped, "mekha_agent_flushed_bytes_total{level=\"L2\"}")).as(agent.node()).isPositive();
                assertThat(metric(scraped, "mekha_agent_flush_seconds_total{level=\"L1\"}")).as(agent.node()).isPositive();
                assertThat(metric(scraped, "mekha_agent_paused_past_deadline_vms")).as(agent.node()).isZero();
            }
            // level 0 lives in the agents' memory: when n2's agent no longer holds it (as after its restart), L0 leaves the
            // levels (the checkpoint is still ready: L1 and L2 hold it)
            vc.client2.discard(st.checkpointId);
            VirtualClusterCheckpoint rechecked = await("cp1", c -> !c.getStatus().levels.contains(LevelName.L0), Duration.ofMinutes(1));
            assertThat(rechecked.getStatus().levels).containsExactly(LevelName.L1, LevelName.L2);
            assertThat(rechecked.getStatus().readyToUse).isTrue();
            assertThat(events("cp1")).contains("Level0Lost");
            // what it was taken with is recorded; an edit after the cut (the API server's immutability rule refuses
            // it, this mock server does not) changes neither the restore nor the deletion below
            assertThat(st.takenWith.storage.level2.location).isEqualTo("shared");
            client.resources(VirtualClusterCheckpoint.class).inNamespace(NS).withName("cp1").edit(c -> {
                c.getSpec().storage.level2 = level2Location("nowhere");
                c.getSpec().deletionPolicy = io.mekha.api.v1alpha1.DeletionPolicy.Retain;
                c.getSpec().timePolicy = io.mekha.api.v1alpha1.TimePolicyName.Step;
                return c;
            });
            System.out.printf("operator checkpoint: max paused %s, suspend skew %s, resume skew %s, %d bytes, durable after %s%n",
                    st.maxPausedTime, st.suspendSkew, st.resumeSkew, st.totalBytes, st.timeToDurable);

            // the VC runs on past the cut, then every VM crashes
            Map<String, Long> reached = new java.util.LinkedHashMap<>();
            for (String vm : vc.vmNames()) {
                reached.put(vm, io.mekha.local.RingReference.lastStepReached(String.join("\n", vc.console(vm))));
            }
            vc.awaitStep(vc.minStep() + 15, RUN);
            for (String vm : vc.vmNames()) {
                ProcessHandle.of(vc.info(vm).pid()).ifPresent(p -> {
                    p.destroyForcibly();
                    p.onExit().join();
                });
            }

            VirtualClusterRestore restore = new VirtualClusterRestore();
            restore.setMetadata(new ObjectMetaBuilder().withName("restore1").withNamespace(NS).build());
            restore.setSpec(new VirtualClusterRestoreSpec());
            restore.setStatus(null);
            restore.getSpec().checkpointName = "cp1";
            restore.getSpec().preferredLevel = LevelName.L1;
            client.resource(restore).create();
            VirtualClusterRestore done = awaitRestore("restore1", RUN);
            assertThat(done.getStatus().phase).as(String.valueOf(done.getStatus().conditions)).isEqualTo(Phase.Succeeded);
            assertThat(done.getStatus().restoredFrom).isEqualTo(LevelName.L1);
            assertThat(done.getStatus().vms).extracting(v -> v.name).containsExactly("vm1", "vm2", "vm3");
            assertThat(done.getStatus().vms).allSatisfy(v -> assertThat(v.resumedAt).isNotNull());
            assertThat(operator.meters.find("mekha.restores").tag("result", "succeeded").tag("level", "L1").counter().count()).isEqualTo(1.0);
            assertThat(events("vm3")).contains("MekhaRestore");

            Map<String, List<String>> consoles = vc.awaitRingDone(RUN);
            consoles.forEach((vm, lines) -> {
                var printed = io.mekha.local.RingReference.printed(lines, TestCluster.node(vm));
                assertThat(printed.firstKey()).as("%s resumed from the cut, not later", vm).isLessThanOrEqualTo(reached.get(vm) + 1);
                assertThat(printed.lastKey()).as("%s finished the run", vm).isEqualTo(vc.steps());
            });
            assertThat(vc.mismatches(consoles)).as("every step after the restore equals an uninterrupted run's").isEmpty();

            // deleting the checkpoint deletes its data (deletionPolicy Delete): the L1 files go, on both nodes
            List<Path> level1 = List.of(vc.agent1.level1().resolve(NS), work.resolve("n2").resolve("level1").resolve(NS));
            assertThat(level1).as("the checkpoint's L1 copies before the delete").allSatisfy(dir -> assertThat(dir).isNotEmptyDirectory());
            client.resource(cp).delete();
            awaitGone("cp1", Duration.ofMinutes(1));
            assertThat(level1).allSatisfy(dir -> assertThat(dir).isEmptyDirectory());
        }
    }

    @Test
    void anOperatorRestartedMidCheckpointAbortsItCleanlyAndNoVmStaysPaused() throws Exception {
        try (TestCluster vc = cluster()) {
            vc.bootAll();
            vc.awaitStep(10, RUN);
            List<CuttableProxy> proxies = new ArrayList<>();
            TestOperator first = new TestOperator(kube.server.createClient(), (node, uri, auth, timeout, tls) -> {
                try {
                    CuttableProxy proxy = new CuttableProxy(uri);
                    proxies.add(proxy);
                    return new AgentClient(node, proxy.uri(), auth, timeout);
                } catch (java.io.IOException e) {
                    throw new IllegalStateException(e);
                }
            }, Clock.systemUTC());
            // a slow live stage (5 MB/s per VM) so the operator dies in the middle of it
            LiveStage slow = new LiveStage();
            slow.bandwidthPerVm = 5_000_000L;
            slow.maxPerVm = "120s";
            slow.globalBound = "180s";
            client.resource(checkpoint("cp1", ringSelector(), null, slow)).create();
            await("cp1", c -> c.getStatus() != null && "LiveStage".equals(c.getStatus().stage), Duration.ofMinutes(1));
            Thread.sleep(1000);
            first.crash();
            proxies.forEach(CuttableProxy::cut);

            try (TestOperator second = new TestOperator(client, Clock.systemUTC())) {
                VirtualClusterCheckpoint cp = await("cp1", c -> c.getStatus().phase.terminal(), RUN);
                assertThat(cp.getStatus().phase).isEqualTo(Phase.Failed);
                var failure = Conditions.get(cp.getStatus().conditions, Conditions.FAILURE);
                assertThat(failure.getStatus()).isEqualTo("True");
                assertThat(failure.getReason()).isEqualTo("OperatorRestarted");
                assertThat(failure.getMessage()).contains("aborted on every agent, every VM left running");
                assertThat(events("cp1")).contains("PickedUp", "OperatorRestarted");
            }
            first.services.runs().close();
            for (String vm : vc.vmNames()) {
                VmInfo info = vc.info(vm);
                assertThat(info.state()).as("%s runs", vm).isEqualTo("running");
            }
            long step = vc.minStep();
            vc.awaitStep(step + 10, RUN);
        }
    }

    /**
     * The operator killed at each stage of a restore from L1 (before the loads, before the prepare, with one node armed
     * and the other not, after every node was armed): the next operator picks each up. Before Tr it calls the restart off
     * everywhere and starts it again; after Tr it adopts what the agents report. Each time the whole VC ends at the cut
     * and runs on exactly, and no QEMU is left behind.
     */
    @Test
    void anOperatorKilledAtEachStageOfARestoreIsPickedUpAndTheVcRunsOnExactly() throws Exception {
        try (TestCluster vc = cluster()) {
            vc.bootAll();
            vc.awaitStep(10, RUN);
            String id;
            try (TestOperator operator = new TestOperator(client, Clock.systemUTC())) {
                client.resource(checkpoint("cp1", ringSelector(), List.of(LevelName.L1), null)).create();
                VirtualClusterCheckpoint cp = await("cp1", c -> c.getStatus() != null && c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
                assertThat(cp.getStatus().phase).as(String.valueOf(cp.getStatus().conditions)).isEqualTo(Phase.Succeeded);
                id = cp.getStatus().checkpointId;
            }
            record Stage(String name, String request, Set<String> nodes, boolean adopted) {}
            List<Stage> stages = List.of(
                    new Stage("load", "POST /v1/stored/load", Set.of("n1", "n2"), false),
                    new Stage("prepare", "POST /v1/checkpoints/" + id + "/restart", Set.of("n1", "n2"), false),
                    new Stage("arm", "POST /v1/checkpoints/" + id + "/arm", Set.of("n1"), false),
                    new Stage("await", "GET /v1/checkpoints/" + id + "/restart", Set.of("n1", "n2"), true));
            for (Stage stage : stages) {
                Map<String, io.mekha.testing.HttpGate> gates = new java.util.concurrent.ConcurrentHashMap<>();
                TestOperator first = new TestOperator(kube.server.createClient(), (node, uri, auth, timeout, tls) -> {
                    io.mekha.testing.HttpGate gate = gates.computeIfAbsent(node, n -> {
                        try {
                            io.mekha.testing.HttpGate g = new io.mekha.testing.HttpGate(uri);
                            if (stage.nodes().contains(n)) {
                                g.holdAt(stage.request()::equals);
                            }
                            return g;
                        } catch (java.io.IOException e) {
                            throw new IllegalStateException(e);
                        }
                    });
                    return new AgentClient(node, gate.uri(), auth, timeout);
                }, Clock.systemUTC());
                String name = "restore-" + stage.name();
                VirtualClusterRestore restore = new VirtualClusterRestore();
                restore.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).build());
                restore.setSpec(new VirtualClusterRestoreSpec());
                restore.setStatus(null);
                restore.getSpec().checkpointName = "cp1";
                restore.getSpec().preferredLevel = LevelName.L1;
                client.resource(restore).create();
                long deadline = System.nanoTime() + RUN.toNanos();
                while (gates.values().stream().noneMatch(g -> {
                    try {
                        return g.awaitHeld(Duration.ZERO);
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                })) {
                    if (System.nanoTime() > deadline) {
                        var now = client.resources(VirtualClusterRestore.class).inNamespace(NS).withName(name).get();
                        throw new AssertionError("the restore did not reach stage " + stage.name() + ": " + (now.getStatus() == null ? null
                                : now.getStatus().phase + " " + now.getStatus().conditions) + "; events " + events(name));
                    }
                    Thread.sleep(20);
                }
                first.crash();
                if (stage.adopted()) {
                    // Tr comes while no operator watches: every VM resumes before the next operator looks
                    long resumed = System.nanoTime() + RUN.toNanos();
                    while (!allRunning(vc, id)) {
                        assertThat(System.nanoTime()).as("every VM resumed at Tr by itself").isLessThan(resumed);
                        Thread.sleep(20);
                    }
                }

                try (TestOperator second = new TestOperator(client, Clock.systemUTC())) {
                    VirtualClusterRestore done = awaitRestore(name, RUN);
                    assertThat(done.getStatus().phase).as("%s: %s", stage.name(), done.getStatus().conditions).isEqualTo(Phase.Succeeded);
                    assertThat(done.getStatus().restoredFrom).isEqualTo(LevelName.L1);
                    assertThat(done.getStatus().vms).extracting(v -> v.name).containsExactly("vm1", "vm2", "vm3");
                    assertThat(done.getStatus().vms).allSatisfy(v -> assertThat(v.resumedAt).isNotNull());
                    if (stage.adopted()) {
                        assertThat(Conditions.get(done.getStatus().conditions, Conditions.READY).getMessage()).contains("picked up from the agents' reports");
                        assertThat(done.getStatus().attempts).isNull();
                    } else {
                        assertThat(done.getStatus().attempts).as("started again after the operator restart at %s", stage.name()).isEqualTo(2);
                    }
                    assertThat(events(name)).contains("PickedUp");
                } finally {
                    first.services.runs().close();
                    gates.values().forEach(io.mekha.testing.HttpGate::close);
                }
                for (String vm : vc.vmNames()) {
                    assertThat(vc.info(vm).state()).as("%s runs after the restore picked up at %s", vm, stage.name()).isEqualTo("running");
                }
                vc.awaitStep(vc.minStep() + 5, RUN);
                Map<String, List<String>> consoles = new java.util.LinkedHashMap<>();
                for (String vm : vc.vmNames()) {
                    consoles.put(vm, vc.console(vm));
                }
                assertThat(vc.mismatches(consoles)).as("after the restore picked up at %s, every step equals an uninterrupted run's", stage.name()).isEmpty();
                assertThat(consoles.values()).as("no ring connection broke").allSatisfy(lines -> assertThat(lines).noneMatch(l -> l.contains("RING error")));
            }
            List<String> qemus = NoQemuLeftBehind.qemuDescendants().stream().map(p -> p.info().commandLine().orElse("?")).toList();
            assertThat(qemus).as("one QEMU per VM and cp1's three shadows (its L0, never used): nothing loaded left behind").hasSize(6);
        }
    }

    private static boolean allRunning(TestCluster vc, String id) throws Exception {
        int running = 0;
        for (AgentClient agent : List.of(vc.client1, vc.client2)) {
            try {
                running += (int) agent.restartStatus(id).vms().stream().filter(v -> v.state() == io.mekha.agent.api.RestartState.RUNNING).count();
            } catch (AgentCallException e) {
                return false;
            }
        }
        return running == 3;
    }

    @Test
    void aCheckpointPastItsFailureDeadlineIsAbortedAndEveryVmKeepsRunning() throws Exception {
        try (TestCluster vc = cluster(); TestOperator operator = new TestOperator(client, Clock.systemUTC())) {
            vc.bootAll();
            vc.awaitStep(10, RUN);
            LiveStage slow = new LiveStage();
            slow.bandwidthPerVm = 5_000_000L;
            slow.maxPerVm = "120s";
            slow.globalBound = "180s";
            VirtualClusterCheckpoint late = checkpoint("late", ringSelector(), null, slow);
            late.getSpec().failureDeadline = "6s";
            client.resource(late).create();
            late = await("late", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), RUN);
            assertThat(late.getStatus().phase).isEqualTo(Phase.Failed);
            var failure = Conditions.get(late.getStatus().conditions, Conditions.FAILURE);
            assertThat(failure.getReason()).isEqualTo("FailureDeadlineExceeded");
            assertThat(failure.getMessage()).contains("failureDeadline of 6s passed").contains("aborted on every agent: every VM runs and no shadow is kept");
            assertThat(late.getStatus().readyToUse).isFalse();
            for (String vm : vc.vmNames()) {
                assertThat(vc.info(vm).state()).as("%s runs", vm).isEqualTo("running");
            }
            vc.awaitStep(vc.minStep() + 10, RUN);
        }
    }

    @Test
    void refusalsSayWhatToFix() throws Exception {
        try (TestCluster vc = cluster(); TestOperator operator = new TestOperator(client, Clock.systemUTC())) {
            // a selector that matches nothing
            VirtualClusterCheckpoint none = client.resource(checkpoint("none", new LabelSelectorBuilder().withMatchLabels(Map.of("app", "nope"))
                    .build(), null, null)).create();
            none = await("none", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), Duration.ofMinutes(1));
            assertThat(none.getStatus().phase).isEqualTo(Phase.Failed);
            var failure = Conditions.get(none.getStatus().conditions, Conditions.FAILURE);
            assertThat(failure.getReason()).isEqualTo("NoVirtualMachines");
            assertThat(failure.getMessage()).contains("{app=nope}").contains("matches no VirtualMachine in namespace hpc");

            // a VM that lives in another namespace
            kube.runningVm("other", "vm9", "n1", Map.of());
            VirtualClusterCheckpoint elsewhere = checkpoint("elsewhere", null, null, null);
            elsewhere.getSpec().vms = List.of("vm1", "vm9");
            client.resource(elsewhere).create();
            elsewhere = await("elsewhere", c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), Duration.ofMinutes(1));
            failure = Conditions.get(elsewhere.getStatus().conditions, Conditions.FAILURE);
            assertThat(failure.getReason()).isEqualTo("VirtualMachineInOtherNamespace");
            assertThat(failure.getMessage()).contains("no VirtualMachine 'vm9' in namespace hpc").contains("namespace other");

            // level 2 only where an admin's storage location says, and only a location that allows this namespace
            assertLevel2Refused("nowhere", "StorageLocationNotFound", "no CheckpointStorageLocation 'nowhere'");
            client.resource(location("theirs", "/proc/1/root/etc", List.of("other"))).create();
            assertLevel2Refused("theirs", "StorageLocationForbidden", "does not allow namespace hpc");

            // agents take no call without a Kubernetes identity they were told to trust
            for (URI agent : List.of(vc.client1.base(), vc.client2.base())) {
                assertRefused(new AgentClient("n", agent, null, Duration.ofSeconds(10)), 401, "needs 'Authorization: Bearer <ServiceAccount token>'");
                assertRefused(new AgentClient("n", agent, "Bearer forged-token-0123456789", Duration.ofSeconds(10)), 401,
                        "did not accept the bearer token (TokenReview: invalid bearer token)");
                assertRefused(new AgentClient("n", agent, "Bearer " + MockKubernetes.INTRUDER_TOKEN, Duration.ofSeconds(10)), 403,
                        "does not take calls from system:serviceaccount:default:default");
                // the operator's own identity, but a token shared by every agent: refused
                assertRefused(new AgentClient("n", agent, "Bearer " + MockKubernetes.OPERATOR_TOKEN, Duration.ofSeconds(10)), 401,
                        "is invalid for the target audiences");
            }
            // a token the operator sent to n1's agent, replayed (by that node, or whoever saw it) to n2's: refused
            assertRefused(new AgentClient("n2", vc.client2.base(), "Bearer " + MockKubernetes.operatorToken("n1"), Duration.ofSeconds(10)), 401,
                    "is invalid for the target audiences [mekha-agent:n2]");
            assertRefused(new AgentClient("n1", vc.client1.base(), "Bearer " + MockKubernetes.operatorToken("n2"), Duration.ofSeconds(10)), 401,
                    "is invalid for the target audiences [mekha-agent:n1]");
            assertThat(vc.client2.vms()).isEmpty();

            // the kubelet's probe and Prometheus need no identity, and learn nothing about VMs
            var http = java.net.http.HttpClient.newHttpClient();
            var health = http.send(java.net.http.HttpRequest.newBuilder(vc.client2.base().resolve("/healthz")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(health.statusCode()).isEqualTo(200);
            var metrics = http.send(java.net.http.HttpRequest.newBuilder(vc.client2.base().resolve("/metrics")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString()).body();
            // n2 refused five: no token, a forged one, an intruder's, the shared-audience one, n1's replayed
            assertThat(metrics).contains("mekha_agent_refused_total 5").contains("mekha_agent_vms 0");
        }
    }

    /** The value of the sample {@code name} (with its labels, as exposed) in a Prometheus text exposition. */
    static double metric(String exposition, String name) {
        return exposition.lines().filter(l -> l.startsWith(name + " ")).map(l -> Double.parseDouble(l.substring(name.length() + 1).trim()))
                .findFirst().orElseThrow(() -> new AssertionError("no sample " + name + " in:\n" + exposition));
    }

    /** A checkpoint to level 2 at storage location {@code location} (and named so) fails with {@code reason} and {@code message}. */
    private void assertLevel2Refused(String location, String reason, String message) throws Exception {
        VirtualClusterCheckpoint cp = checkpoint(location, ringSelector(), List.of(LevelName.L2), null);
        cp.getSpec().storage.level2 = level2Location(location);
        client.resource(cp).create();
        cp = await(location, c -> c.getStatus().phase != null && c.getStatus().phase.terminal(), Duration.ofMinutes(1));
        var failure = Conditions.get(cp.getStatus().conditions, Conditions.FAILURE);
        assertThat(failure.getReason()).isEqualTo(reason);
        assertThat(failure.getMessage()).contains(message);
    }

    private static void assertRefused(AgentClient client, int status, String message) {
        try {
            client.vms();
            throw new AssertionError("the agent at " + client.base() + " answered an unauthorized call");
        } catch (AgentCallException e) {
            assertThat(e.status()).isEqualTo(status);
            assertThat(e.getMessage()).contains(message);
        }
    }

    static io.fabric8.kubernetes.api.model.LabelSelector ringSelector() {
        return new LabelSelectorBuilder().withMatchLabels(Map.of("app", "ring")).build();
    }

    static CheckpointStorageLocation location(String name, String path, List<String> namespaces) {
        CheckpointStorageLocation location = new CheckpointStorageLocation();
        location.setMetadata(new ObjectMetaBuilder().withName(name).build());
        location.setSpec(new CheckpointStorageLocationSpec());
        location.getSpec().path = path;
        location.getSpec().namespaces = namespaces;
        return location;
    }

    static Level2Target level2Location(String name) {
        Level2Target target = new Level2Target();
        target.location = name;
        return target;
    }

    static VirtualClusterCheckpoint checkpoint(String name, io.fabric8.kubernetes.api.model.LabelSelector selector, List<LevelName> levels,
                                               LiveStage live) {
        VirtualClusterCheckpoint cp = new VirtualClusterCheckpoint();
        cp.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).build());
        VirtualClusterCheckpointSpec spec = new VirtualClusterCheckpointSpec();
        spec.selector = selector;
        spec.liveStage = live;
        spec.failureDeadline = "10m";
        if (levels != null) {
            spec.storage = new StorageSpec();
            spec.storage.levels = levels;
        }
        cp.setSpec(spec);
        cp.setStatus(null); // what a real API server stores for a new object: no status
        return cp;
    }

    private VirtualClusterCheckpoint await(String name, Predicate<VirtualClusterCheckpoint> test, Duration timeout) throws Exception {
        return awaitStatus(VirtualClusterCheckpoint.class, name, test, timeout);
    }

    private VirtualClusterRestore awaitRestore(String name, Duration timeout) throws Exception {
        return awaitStatus(VirtualClusterRestore.class, name, r -> r.getStatus().phase != null && r.getStatus().phase.terminal(), timeout);
    }

    private <T extends io.fabric8.kubernetes.client.CustomResource<?, ?>> T awaitStatus(Class<T> type, String name, Predicate<T> test,
                                                                                    Duration timeout) throws Exception {
        return kube.awaitStatus(type, NS, name, test, timeout);
    }

    private void awaitGone(String name, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (client.resources(VirtualClusterCheckpoint.class).inNamespace(NS).withName(name).get() != null) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("checkpoint " + name + " still there after " + timeout + " (its finalizer did not finish)");
            }
            Thread.sleep(200);
        }
    }

    private List<String> events(String about) {
        return client.v1().events().inNamespace(NS).list().getItems().stream()
                .filter(e -> about.equals(e.getInvolvedObject().getName())).map(Event::getReason).toList();
    }
}
