package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.Reasons;
import io.mekha.api.v1alpha1.RecoveryPolicy;
import io.mekha.api.v1alpha1.TransferModeName;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointStatus;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VmProgress;
import io.mekha.operator.cli.KubectlCommand;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code kubectl mekha} against the mock API server: it creates checkpoints, restores and schedules as a person would
 * write them, follows a checkpoint's progress from its status while the test plays the operator, lists and describes
 * checkpoints in kubectl's formats, and refuses bad input with what to fix and exit code 2 (a failed resource: 1).
 */
@Tag("fast")
class KubectlPluginTest {
    static final String NS = "hpc";

    MockKubernetes kube;
    KubernetesClient client;

    @BeforeEach
    void apiServer() throws Exception {
        kube = new MockKubernetes();
        client = kube.client;
        kube.namespace(NS);
    }

    @AfterEach
    void stop() {
        kube.close();
    }

    record Run(int exit, String out, String err) {}

    private Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new KubectlCommand(() -> kube.server.createClient()));
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int exit = cli.execute(args);
        return new Run(exit, out.toString(), err.toString());
    }

    @Test
    void aCheckpointIsCreatedAndFollowedUntilItSucceedsThenListedAndDescribed() throws Exception {
        // the operator's part: the checkpoint goes through its stages
        CompletableFuture<Void> operator = CompletableFuture.runAsync(() -> {
            try {
                kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp1", c -> true, java.time.Duration.ofSeconds(20));
                for (String stage : List.of("LiveStage", "Captured", "Done")) {
                    status("cp1", st -> {
                        st.phase = stage.equals("Done") ? Phase.Succeeded : Phase.InProgress;
                        st.stage = stage;
                        st.vms = List.of(vm("vm1", "n1", 180L << 20), vm("vm2", "n2", 170L << 20));
                        st.totalBytes = 350L << 20;
                        st.suspendAt = "2026-12-03T10:00:00Z";
                        st.maxPausedTime = "118ms";
                        if (stage.equals("Done")) {
                            st.readyToUse = true;
                            st.levels = List.of(LevelName.L0, LevelName.L1);
                            st.level0 = new io.mekha.api.v1alpha1.Level0Status();
                            st.level0.placement = io.mekha.api.v1alpha1.Level0Placement.Both;
                            st.level0.copies = List.of(new io.mekha.api.v1alpha1.Level0Holder("vm1", "n1", "Own"),
                                    new io.mekha.api.v1alpha1.Level0Holder("vm1", "n2", "Partner"));
                            Conditions.succeeded(st.conditions, Reasons.SUCCEEDED, "every VM resumed", 1L, Instant.now());
                        }
                    });
                    Thread.sleep(600);
                }
            } catch (InterruptedException e) {
                throw new RuntimeException(e);
            }
        });
        Run run = run("checkpoint", "cp1", "-n", NS, "--selector", "app=hpl", "--levels", "L1", "--mode", "StopAndCopy", "--level0", "both", "--wait", "--timeout", "1m");
        operator.get(30, TimeUnit.SECONDS);
        assertThat(run.exit()).as(run.err()).isZero();
        assertThat(run.out()).contains("checkpoint hpc/cp1 created").contains("InProgress, LiveStage, 2 VMs")
                .contains("InProgress, Captured").contains("Succeeded, Done, 2 VMs, 350Mi captured, held at [L0, L1]").contains("checkpoint cp1 Succeeded");
        VirtualClusterCheckpoint cp = client.resources(VirtualClusterCheckpoint.class).inNamespace(NS).withName("cp1").get();
        assertThat(cp.getSpec().selector.getMatchLabels()).containsEntry("app", "hpl");
        assertThat(cp.getSpec().storage.levels).containsExactly(LevelName.L1);
        assertThat(cp.getSpec().transferMode).isEqualTo(TransferModeName.StopAndCopy);
        assertThat(cp.getSpec().storage.level0.placement).isEqualTo(io.mekha.api.v1alpha1.Level0Placement.Both);

        Run ls = run("ls", "-n", NS);
        assertThat(ls.exit()).as(ls.err()).isZero();
        assertThat(ls.out().lines().toList().get(0)).startsWith("NAME").contains("PHASE").contains("LEVELS").contains("SIZE").contains("CUT");
        assertThat(ls.out()).containsPattern("cp1\\s+Succeeded\\s+true\\s+L0,L1\\s+2\\s+350Mi\\s+118ms\\s+2026-12-03T10:00:00Z");
        JsonNode json = new ObjectMapper().readTree(run("ls", "-n", NS, "-o", "json").out());
        assertThat(json.path("items").get(0).path("metadata").path("name").asText()).isEqualTo("cp1");
        assertThat(run("ls", "-A").out()).startsWith("NAMESPACE").contains("hpc");

        Run describe = run("describe", "cp1", "-n", NS);
        assertThat(describe.exit()).isZero();
        assertThat(describe.out()).contains("Ready to use: true").contains("Cut (Ts):     2026-12-03T10:00:00Z")
                .containsPattern("vm1\\s+n1\\s+Resumed\\s+110ms\\s+180Mi").containsPattern("vm2\\s+n2").contains("Succeeded")
                .contains("In memory:    vm1 on n1, vm1 on n2 (partner) (Both)");
        assertThat(run("describe", "cp1", "-n", NS, "-o", "yaml").out()).contains("kind: \"VirtualClusterCheckpoint\"").contains("name: \"cp1\"");
    }

    @Test
    void aFailedCheckpointExitsOneWithItsReasonAndRestoresAndSchedulesAreCreated() throws Exception {
        CompletableFuture<Void> operator = CompletableFuture.runAsync(() -> {
            try {
                kube.awaitStatus(VirtualClusterCheckpoint.class, NS, "cp2", c -> true, java.time.Duration.ofSeconds(20));
                status("cp2", st -> {
                    st.phase = Phase.Failed;
                    Conditions.failed(st.conditions, Reasons.NO_VIRTUAL_MACHINES, "spec.selector {app=nope} matches no VirtualMachine", 1L, Instant.now());
                });
            } catch (InterruptedException e) {
                throw new RuntimeException(e);
            }
        });
        Run failed = run("checkpoint", "cp2", "-n", NS, "-l", "app=nope", "--wait");
        operator.get(30, TimeUnit.SECONDS);
        assertThat(failed.exit()).isEqualTo(1);
        assertThat(failed.err()).contains("checkpoint cp2 Failed: NoVirtualMachines: spec.selector {app=nope} matches no VirtualMachine");

        Run restore = run("restore", "r1", "-n", NS, "--from", "cp2", "--level", "L1");
        assertThat(restore.exit()).as(restore.err()).isZero();
        VirtualClusterRestore r = client.resources(VirtualClusterRestore.class).inNamespace(NS).withName("r1").get();
        assertThat(r.getSpec().checkpointName).isEqualTo("cp2");
        assertThat(r.getSpec().preferredLevel).isEqualTo(LevelName.L1);

        Run schedule = run("schedule", "hourly", "-n", NS, "--cron", "0 * * * *", "--vm", "vm1", "--vm", "vm2", "--keep-last", "3",
                "--recovery", "Automatic", "-o", "json");
        assertThat(schedule.exit()).as(schedule.err()).isZero();
        assertThat(new ObjectMapper().readTree(schedule.out()).path("spec").path("schedule").asText()).isEqualTo("0 * * * *");
        VirtualClusterCheckpointSchedule s = client.resources(VirtualClusterCheckpointSchedule.class).inNamespace(NS).withName("hourly").get();
        assertThat(s.getSpec().template.spec.vms).containsExactly("vm1", "vm2");
        assertThat(s.getSpec().retention.keepLast).isEqualTo(3);
        assertThat(s.getSpec().recovery.policy).isEqualTo(RecoveryPolicy.Automatic);
    }

    @Test
    void badInputIsRefusedWithWhatToFix() {
        assertRefused(run("checkpoint", "cp", "-n", NS), 2, "say which VMs: --selector key=value");
        assertRefused(run("checkpoint", "cp", "-n", NS, "-l", "app=a", "--vm", "x"), 2, "not both");
        assertRefused(run("checkpoint", "cp", "-n", NS, "-l", "app"), 2, "write key=value");
        assertRefused(run("checkpoint", "cp", "-n", NS, "-l", "app=a", "--levels", "L3"), 2, "unknown level 'L3'");
        assertRefused(run("checkpoint", "cp", "-n", NS, "-l", "app=a", "--mode", "Teleport"), 2, "use MTD, StopAndCopy or BackgroundSnapshot");
        assertRefused(run("checkpoint", "cp", "-n", NS, "-l", "app=a", "--timeout", "soon"), 2, "for example 10m");
        assertRefused(run("ls", "-n", NS, "-o", "xml"), 2, "unknown output format 'xml'");
        assertRefused(run("describe", "nope", "-n", NS), 1, "no checkpoint nope in namespace hpc (kubectl mekha ls -n hpc)");
        assertRefused(run("restore", "r", "-n", NS, "--from", "nope"), 2, "no checkpoint nope in namespace hpc to restore from");
        assertRefused(run("schedule", "s", "-n", NS, "--cron", "* * *", "--vm", "a"), 2, "write five fields");
        assertThat(run("checkpoint", "twice", "-n", NS, "--vm", "a").exit()).isZero();
        assertRefused(run("checkpoint", "twice", "-n", NS, "--vm", "a"), 2, "checkpoint twice already exists in namespace hpc");
        assertRefused(run("frobnicate"), 2, "Unmatched argument");
    }

    private static void assertRefused(Run run, int exit, String message) {
        assertThat(run.exit()).as(run.out() + run.err()).isEqualTo(exit);
        assertThat(run.err()).contains(message);
    }

    private void status(String name, java.util.function.Consumer<VirtualClusterCheckpointStatus> change) {
        VirtualClusterCheckpoint cp = client.resources(VirtualClusterCheckpoint.class).inNamespace(NS).withName(name).get();
        if (cp.getStatus() == null) {
            cp.setStatus(new VirtualClusterCheckpointStatus());
        }
        change.accept(cp.getStatus());
        client.resource(cp).updateStatus();
    }

    private static VmProgress vm(String name, String node, long bytes) {
        VmProgress v = new VmProgress();
        v.name = name;
        v.node = node;
        v.phase = "Resumed";
        v.pausedTime = "110ms";
        v.bytes = bytes;
        return v;
    }
}
