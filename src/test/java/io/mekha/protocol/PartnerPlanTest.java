package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Where each VM's partner copy goes: never its own node, never past what a node lends; refused whole, before the cut. */
@Tag("fast")
class PartnerPlanTest {

    @Test
    void eachVmGoesToAnotherNodeWithTheMostRoomLeftLargestFirst() throws Exception {
        List<PartnerPlan.Vm> vms = List.of(new PartnerPlan.Vm("a", "n1", 1024), new PartnerPlan.Vm("b", "n1", 512), new PartnerPlan.Vm("c", "n2", 512));
        List<PartnerPlan.Node> nodes = List.of(new PartnerPlan.Node("n1", 1000, 64), new PartnerPlan.Node("n2", 2000, 64),
                new PartnerPlan.Node("n3", 600, 64));
        // a (1088 there) fits only n2; b (576) then has n2 (912 left) and n3 (600): n2 keeps more; c (576) goes to n1 (1000)
        assertThat(PartnerPlan.place(vms, nodes)).containsExactly(Map.entry("a", "n2"), Map.entry("b", "n2"), Map.entry("c", "n1"));
    }

    @Test
    void aPlanThatDoesNotFitIsRefusedWithEveryVmLeftOutAndTheRoomEachNodeLends() {
        List<PartnerPlan.Vm> vms = List.of(new PartnerPlan.Vm("big", "n1", 4096), new PartnerPlan.Vm("small", "n2", 256));
        List<PartnerPlan.Node> nodes = List.of(new PartnerPlan.Node("n1", 8192, 64), new PartnerPlan.Node("n2", 1024, 64));
        assertThatThrownBy(() -> PartnerPlan.place(vms, nodes)).isInstanceOf(CheckpointFailedException.class)
                .hasMessageContaining("does not fit").hasMessageContaining("big of node n1 (4096 MiB)").hasMessageNotContaining("small of")
                .hasMessageContaining("n2 1024 MiB").hasMessageContaining("--lend-memory");
    }

    @Test
    void whereTheFirstPassLeavesAVmOutAPlacementThatFitsIsStillFound() throws Exception {
        // largest first to the most room puts a 3 on each node and leaves the third 2 nowhere; 3+3 and 2+2+2 fit exactly
        List<PartnerPlan.Vm> vms = List.of(new PartnerPlan.Vm("a", "n3", 3), new PartnerPlan.Vm("b", "n3", 3), new PartnerPlan.Vm("c", "n3", 2),
                new PartnerPlan.Vm("d", "n3", 2), new PartnerPlan.Vm("e", "n3", 2));
        List<PartnerPlan.Node> nodes = List.of(new PartnerPlan.Node("n1", 6, 0), new PartnerPlan.Node("n2", 6, 0), new PartnerPlan.Node("n3", 100, 0));
        Map<String, String> plan = PartnerPlan.place(vms, nodes);
        assertThat(plan.get("a")).isEqualTo(plan.get("b"));
        assertThat(List.of(plan.get("c"), plan.get("d"), plan.get("e"))).containsOnly(plan.get("a").equals("n1") ? "n2" : "n1");
    }

    /** Small random clusters against every placement there is: a plan is found exactly when one fits. */
    @Test
    void aPlanIsRefusedOnlyWhenNoPlacementFits() {
        Random random = new Random(7);
        int fits = 0;
        int firstPassWouldHaveRefused = 0;
        for (int round = 0; round < 3000; round++) {
            Cluster c = Cluster.random(random, 2 + random.nextInt(3), n -> new PartnerPlan.Node("n" + n, random.nextInt(13), random.nextInt(2)),
                    () -> 1 + random.nextInt(7), () -> 1 + random.nextInt(5));
            List<PartnerPlan.Node> nodes = c.nodes();
            List<PartnerPlan.Vm> vms = c.vms();
            boolean anyFits = anyPlacementFits(vms, nodes, 0, new long[nodes.size()]);
            boolean found;
            try {
                c.assertHolds(round, PartnerPlan.place(vms, nodes));
                found = true;
            } catch (CheckpointFailedException e) {
                found = false;
                assertThat(e.getMessage()).doesNotContain("there may be one");
            }
            assertThat(found).as("round %d: %s on %s", round, vms, nodes).isEqualTo(anyFits);
            if (anyFits) {
                fits++;
                if (firstPassRefuses(vms, nodes)) {
                    firstPassWouldHaveRefused++;
                }
            }
        }
        assertThat(fits).as("clusters that fit").isGreaterThan(500);
        assertThat(firstPassWouldHaveRefused).as("clusters that fit only past the first pass").isGreaterThan(10);
    }

    private static boolean anyPlacementFits(List<PartnerPlan.Vm> vms, List<PartnerPlan.Node> nodes, int i, long[] used) {
        if (i == vms.size()) {
            return true;
        }
        PartnerPlan.Vm vm = vms.get(i);
        for (int n = 0; n < nodes.size(); n++) {
            PartnerPlan.Node node = nodes.get(n);
            long need = vm.memoryMiB() + node.copyOverheadMiB();
            if (!node.name().equals(vm.node()) && used[n] + need <= node.roomMiB()) {
                used[n] += need;
                boolean fits = anyPlacementFits(vms, nodes, i + 1, used);
                used[n] -= need;
                if (fits) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Whether the first pass alone (largest first, each to the most room left) leaves a VM out: all the plan did before it searched. */
    private static boolean firstPassRefuses(List<PartnerPlan.Vm> vms, List<PartnerPlan.Node> nodes) {
        List<String> unplaced = new ArrayList<>();
        PartnerPlan.firstPass(PartnerPlan.largestFirst(vms), nodes, unplaced);
        return !unplaced.isEmpty();
    }

    @Test
    void aSingleNodeHasNoPartner() {
        assertThatThrownBy(() -> PartnerPlan.place(List.of(new PartnerPlan.Vm("a", "n1", 256)), List.of(new PartnerPlan.Node("n1", 1 << 20, 64))))
                .isInstanceOf(CheckpointFailedException.class).hasMessageContaining("no node other than its own");
    }

    /** Random clusters: whatever the sizes, a plan never puts a copy on its VM's node nor past a node's room. */
    @Test
    void noPlanEverPutsACopyOnItsOwnNodeOrPastWhatANodeLends() {
        Random random = new Random(20261207);
        int placed = 0;
        int refused = 0;
        for (int round = 0; round < 2000; round++) {
            Cluster c = Cluster.random(random, 1 + random.nextInt(5), n -> new PartnerPlan.Node("n" + n, random.nextInt(8) * 512L, 64),
                    () -> 1 + random.nextInt(8), () -> 256L << random.nextInt(4));
            try {
                c.assertHolds(round, PartnerPlan.place(c.vms(), c.nodes()));
                placed++;
            } catch (CheckpointFailedException e) {
                refused++;
                assertThat(e.getMessage()).contains("does not fit");
            }
        }
        assertThat(placed).as("plans that fit").isGreaterThan(200);
        assertThat(refused).as("plans refused").isGreaterThan(200);
    }

    /** A cluster to place: its nodes n0.. and VMs vm0.., each VM on a random one of the nodes. */
    record Cluster(List<PartnerPlan.Node> nodes, List<PartnerPlan.Vm> vms) {
        static Cluster random(Random random, int nodeCount, java.util.function.IntFunction<PartnerPlan.Node> node,
                              java.util.function.IntSupplier vmCount, java.util.function.LongSupplier vmMiB) {
            List<PartnerPlan.Node> nodes = new ArrayList<>();
            for (int n = 0; n < nodeCount; n++) {
                nodes.add(node.apply(n));
            }
            List<PartnerPlan.Vm> vms = new ArrayList<>();
            for (int v = 0, count = vmCount.getAsInt(); v < count; v++) {
                String on = "n" + random.nextInt(nodeCount);
                vms.add(new PartnerPlan.Vm("vm" + v, on, vmMiB.getAsLong()));
            }
            return new Cluster(nodes, vms);
        }

        /** The plan places every VM, never on its own node, and no node past the room it lends (each copy with that node's overhead). */
        void assertHolds(int round, Map<String, String> plan) {
            assertThat(plan.keySet()).containsExactlyElementsOf(vms.stream().map(PartnerPlan.Vm::name).toList());
            Map<String, Long> used = new HashMap<>();
            for (PartnerPlan.Vm vm : vms) {
                assertThat(plan.get(vm.name())).as("round %d: %s", round, vm).isNotEqualTo(vm.node());
                PartnerPlan.Node to = nodes.stream().filter(n -> n.name().equals(plan.get(vm.name()))).findFirst().orElseThrow();
                used.merge(to.name(), vm.memoryMiB() + to.copyOverheadMiB(), Long::sum);
            }
            for (PartnerPlan.Node node : nodes) {
                assertThat(used.getOrDefault(node.name(), 0L)).as("round %d: node %s", round, node.name()).isLessThanOrEqualTo(node.roomMiB());
            }
        }
    }
}
