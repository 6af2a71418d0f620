package io.mekha.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Mekha on a real cluster with KubeVirt (software emulation): install KubeVirt and Mekha as a
 * cluster admin would, create a 2-VM virtual cluster whose guests count on their serial consoles,
 * checkpoint it, kill both virt-launcher pods (the simulated crash; KubeVirt starts the VMs afresh,
 * counting from 1 again), restore, and check that each guest counts on from where the checkpoint
 * cut it. How to run it: e2e/README.md.
 */
@Tag("e2e")
class KubeVirtCheckpointE2eTest {
    static final String NS = "mekha-e2e";
    static final List<String> VMS = List.of("vm1", "vm2");
    static final Pattern COUNT = Pattern.compile("MEKHA-COUNT (\\d+)");
    static E2eCluster cluster;

    @BeforeAll
    static void install() throws Exception {
        cluster = E2eCluster.start();
        Path kubevirt = Path.of(E2eCluster.requireEnv("MEKHA_E2E_KUBEVIRT_MANIFESTS",
                "a directory holding kubevirt-operator.yaml and kubevirt-cr.yaml of a KubeVirt release (see e2e/README.md)"));
        cluster.kubectl("apply", "-f", kubevirt.resolve("kubevirt-operator.yaml").toString());
        cluster.kubectl("apply", "-f", kubevirt.resolve("kubevirt-cr.yaml").toString());
        // no nested virtualization in a k3s container: software emulation; Mekha's hook needs the Sidecar gate
        cluster.kubectl("-n", "kubevirt", "patch", "kubevirt", "kubevirt", "--type=merge", "-p",
                "{\"spec\":{\"configuration\":{\"developerConfiguration\":{\"useEmulation\":true,\"featureGates\":[\"Sidecar\"]}}}}");
        cluster.await("Deployed", Duration.ofMinutes(15), "-n", "kubevirt", "get", "kubevirt", "kubevirt", "-o", "jsonpath={.status.phase}");
        cluster.kubectl("apply", "-k", "manifests");
        cluster.await("1", Duration.ofMinutes(5), "-n", "mekha-system", "get", "deployment", "mekha-operator", "-o",
                "jsonpath={.status.readyReplicas}");
        // the agent serves only once the operator signed its CertificateSigningRequest (mutual TLS): a real API server's CSR flow
        cluster.await("1", Duration.ofMinutes(10), "-n", "mekha-system", "get", "daemonset", "mekha-agent", "-o",
                "jsonpath={.status.numberReady}");
        cluster.kubectl("create", "namespace", NS);
        cluster.kubectl("apply", "-n", NS, "-k", "qemu-hooks");
        for (String vm : VMS) {
            cluster.kubectlWithInput(virtualMachine(vm), "apply", "-n", NS, "-f", "-");
        }
        for (String vm : VMS) {
            cluster.await("Running", Duration.ofMinutes(10), "-n", NS, "get", "vmi", vm, "-o", "jsonpath={.status.phase}");
            awaitCount(vm, 10, Duration.ofMinutes(10));
        }
    }

    @AfterAll
    static void uninstall() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void aVirtualClusterCheckpointedOnKubeVirtRestartsAfterItsPodsDieAndCountsOnFromTheCut() throws Exception {
        cluster.kubectlWithInput(resource("VirtualClusterCheckpoint", "cp1", "vms: [vm1, vm2]\n"
                + "  storage:\n    levels: [L1]\n"), "apply", "-n", NS, "-f", "-");
        cluster.await("Succeeded", Duration.ofMinutes(10), "-n", NS, "get", "vccp", "cp1", "-o", "jsonpath={.status.phase}");
        long[] afterCheckpoint = new long[VMS.size()];
        for (int i = 0; i < VMS.size(); i++) {
            afterCheckpoint[i] = lastCount(VMS.get(i));
        }

        // the crash: both pods go; KubeVirt starts the VMs again from boot
        for (String vm : VMS) {
            cluster.kubectl("-n", NS, "delete", "pod", "-l", "kubevirt.io/domain=" + vm, "--wait=false");
        }
        for (String vm : VMS) {
            cluster.await("Running", Duration.ofMinutes(10), "-n", NS, "get", "vmi", vm, "-o", "jsonpath={.status.phase}");
        }

        cluster.kubectlWithInput(resource("VirtualClusterRestore", "restore1", "checkpointName: cp1\n"), "apply", "-n", NS, "-f", "-");
        cluster.await("Succeeded", Duration.ofMinutes(15), "-n", NS, "get", "vcrestore", "restore1", "-o", "jsonpath={.status.phase}");
        for (int i = 0; i < VMS.size(); i++) {
            String vm = VMS.get(i);
            awaitCount(vm, afterCheckpoint[i] + 5, Duration.ofMinutes(5));
            List<Long> counts = counts(vm);
            assertThat(counts.get(0)).as("%s's restored guest goes on from the cut, not from boot", vm)
                    .isGreaterThan(1).isLessThanOrEqualTo(afterCheckpoint[i] + 1);
            for (int k = 1; k < counts.size(); k++) {
                assertThat(counts.get(k)).as("%s counts on without a gap or a repeat", vm).isEqualTo(counts.get(k - 1) + 1);
            }
        }
    }

    /**
     * Level 0 on a partner node, on a cluster with agents on two nodes or more: a checkpoint that keeps each VM's memory copy
     * on its own node and on another; then vm2's node loses its memory (its agent pod is deleted: the level-0 tmpfs goes with
     * it; the DaemonSet starts a new one) and vm2's pod dies. The restore from L0 takes vm2's copy from the other node, starts
     * vm2 there, and the guest counts on from the cut.
     */
    @Test
    void aVmWhoseNodeLostItsMemoryIsRestoredFromItsPartnerNodesCopy() throws Exception {
        List<String> agentNodes = List.of(cluster.kubectl("-n", "mekha-system", "get", "pods", "-l", "app.kubernetes.io/name=mekha-agent",
                "-o", "jsonpath={.items[*].spec.nodeName}").strip().split("\\s+"));
        org.junit.jupiter.api.Assumptions.assumeTrue(agentNodes.size() >= 2, "level 0 on a partner node needs Mekha agents on two nodes;"
                + " this cluster has them on " + agentNodes);
        cluster.kubectlWithInput(resource("VirtualClusterCheckpoint", "cp-partner", "vms: [vm1, vm2]\n"
                + "  storage:\n    level0: {placement: Both}\n"), "apply", "-n", NS, "-f", "-");
        cluster.await("Succeeded", Duration.ofMinutes(10), "-n", NS, "get", "vccp", "cp-partner", "-o", "jsonpath={.status.phase}");
        String roles = cluster.kubectl("-n", NS, "get", "vccp", "cp-partner", "-o", "jsonpath={.status.level0.copies[*].role}");
        assertThat(roles.strip().split("\\s+")).as("each VM held on its node and on a partner").containsExactlyInAnyOrder("Own", "Own",
                "Partner", "Partner");
        String lostNode = cluster.kubectl("-n", NS, "get", "vmi", "vm2", "-o", "jsonpath={.status.nodeName}").strip();
        long[] afterCheckpoint = new long[VMS.size()];
        for (int i = 0; i < VMS.size(); i++) {
            afterCheckpoint[i] = lastCount(VMS.get(i));
        }

        // vm2's node loses its memory: its agent pod goes (and its level-0 tmpfs with it), and vm2's pod dies
        cluster.kubectl("-n", "mekha-system", "delete", "pod", "-l", "app.kubernetes.io/name=mekha-agent", "--field-selector=spec.nodeName=" + lostNode);
        cluster.kubectl("-n", NS, "delete", "pod", "-l", "kubevirt.io/domain=vm2", "--wait=false");
        cluster.await(String.valueOf(agentNodes.size()), Duration.ofMinutes(10), "-n", "mekha-system", "get", "daemonset", "mekha-agent", "-o",
                "jsonpath={.status.numberReady}");
        cluster.await("Running", Duration.ofMinutes(10), "-n", NS, "get", "vmi", "vm2", "-o", "jsonpath={.status.phase}");

        cluster.kubectlWithInput(resource("VirtualClusterRestore", "restore-partner", "checkpointName: cp-partner\n"), "apply", "-n", NS, "-f", "-");
        cluster.await("Succeeded", Duration.ofMinutes(15), "-n", NS, "get", "vcrestore", "restore-partner", "-o", "jsonpath={.status.phase}");
        assertThat(cluster.kubectl("-n", NS, "get", "vcrestore", "restore-partner", "-o", "jsonpath={.status.restoredFrom}").strip()).isEqualTo("L0");
        assertThat(cluster.kubectl("-n", NS, "get", "vmi", "vm2", "-o", "jsonpath={.status.nodeName}").strip())
                .as("vm2 restarted on the node that held its partner copy").isNotEqualTo(lostNode);
        for (int i = 0; i < VMS.size(); i++) {
            String vm = VMS.get(i);
            awaitCount(vm, afterCheckpoint[i] + 5, Duration.ofMinutes(5));
            List<Long> counts = counts(vm);
            assertThat(counts.get(0)).as("%s's restored guest goes on from the cut", vm).isGreaterThan(1).isLessThanOrEqualTo(afterCheckpoint[i] + 1);
        }

        // the copies that went with the agent's memory are made again from the node that still holds each VM: every VM of
        // the checkpoint is in the memory of two nodes again
        long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
        while (true) {
            String held = cluster.kubectl("-n", NS, "get", "vccp", "cp-partner", "-o",
                    "jsonpath={range .status.level0.copies[*]}{.vm}@{.node} {end}").strip();
            java.util.Map<String, Long> nodesPerVm = java.util.Arrays.stream(held.split("\\s+")).filter(c -> !c.isEmpty())
                    .collect(java.util.stream.Collectors.groupingBy(c -> c.split("@")[0], java.util.stream.Collectors.counting()));
            if (nodesPerVm.size() == VMS.size() && nodesPerVm.values().stream().allMatch(n -> n == 2)) {
                break;
            }
            assertThat(System.nanoTime()).as("every VM of cp-partner in two nodes' memory again; now %s", held).isLessThan(deadline);
            Thread.sleep(2000);
        }
        assertThat(cluster.kubectl("-n", NS, "get", "events", "--field-selector=involvedObject.name=cp-partner", "-o",
                "jsonpath={.items[*].reason}")).contains("Level0CopyRemade");
    }

    /** What the guest printed on its serial console, as KubeVirt logs it (the launcher pod's guest-console-log container). */
    static List<Long> counts(String vm) throws Exception {
        String pod = cluster.kubectl("-n", NS, "get", "pod", "-l", "kubevirt.io/domain=" + vm, "--field-selector=status.phase=Running",
                "-o", "jsonpath={.items[0].metadata.name}").strip();
        Matcher m = COUNT.matcher(cluster.kubectl("-n", NS, "logs", pod, "-c", "guest-console-log"));
        List<Long> counts = new java.util.ArrayList<>();
        while (m.find()) {
            counts.add(Long.parseLong(m.group(1)));
        }
        return counts;
    }

    static long lastCount(String vm) throws Exception {
        List<Long> counts = counts(vm);
        return counts.isEmpty() ? 0 : counts.get(counts.size() - 1);
    }

    static void awaitCount(String vm, long count, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (lastCount(vm) < count) {
            assertThat(System.nanoTime()).as("%s counting to %d", vm, count).isLessThan(deadline);
            Thread.sleep(2000);
        }
    }

    /** A small VM from MEKHA_E2E_GUEST_IMAGE (a containerDisk with cloud-init, e.g. CirrOS), counting on its serial console. */
    static String virtualMachine(String name) throws Exception {
        String template = Files.readString(Path.of("e2e/vm.yaml"));
        return template.replace("@NAME@", name).replace("@IMAGE@", E2eCluster.requireEnv("MEKHA_E2E_GUEST_IMAGE",
                "a containerDisk image with cloud-init NoCloud and a shell, e.g. CirrOS (see e2e/README.md)"));
    }

    static String resource(String kind, String name, String spec) {
        return "apiVersion: mekha.io/v1alpha1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\nspec:\n  " + spec;
    }
}
