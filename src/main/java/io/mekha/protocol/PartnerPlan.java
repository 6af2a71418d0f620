package io.mekha.protocol;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which node holds each VM's level-0 partner copy: never the VM's own node (losing one node must never take both copies
 * of a VM), and within what each node lends. Largest VMs first, each to the node with the most room left; where that
 * leaves a VM with nowhere to go, a search over the other placements finds one if any fits (sizes 3, 3, 2, 2, 2 on two
 * nodes lending 6 each fit only as 3+3 and 2+2+2). A plan that does not fit is refused whole, with every VM the first
 * pass could not place, before anything is paused.
 */
final class PartnerPlan {
    /** Placements the search may try before it gives up; far more than clusters of tens of VMs on tens of nodes need. */
    static final int SEARCH_BUDGET = 200_000;

    /** A VM to place: its node, and its guest RAM. */
    record Vm(String name, String node, long memoryMiB) {}

    /**
     * A node that may hold copies: the room it has for them, and what one copy takes beyond the guest RAM there.
     */
    record Node(String name, long roomMiB, long copyOverheadMiB) {}

    private PartnerPlan() {}

    /** VM to the node that holds its partner copy; refused with what does not fit. */
    static Map<String, String> place(List<Vm> vms, List<Node> nodes) throws CheckpointFailedException {
        List<Vm> order = largestFirst(vms);
        List<String> unplaced = new ArrayList<>();
        Map<String, String> placed = firstPass(order, nodes, unplaced);
        String searched = "";
        if (!unplaced.isEmpty()) {
            Search search = new Search(order, nodes);
            if (search.run(0)) {
                placed = search.placed();
                unplaced.clear();
            } else if (search.steps > SEARCH_BUDGET) {
                searched = "; no placement found in " + SEARCH_BUDGET + " tries, there may be one";
            }
        }
        if (!unplaced.isEmpty()) {
            List<String> rooms = nodes.stream().map(n -> n.name() + " " + n.roomMiB() + " MiB").toList();
            throw new CheckpointFailedException("level 0 on partner nodes does not fit: no node other than its own has room for "
                    + String.join(", ", unplaced) + " (room the nodes lend now: " + (rooms.isEmpty() ? "no other node takes copies" : String.join(", ", rooms))
                    + searched + "); lend more memory (the agents' --lend-memory), checkpoint fewer VMs, or use placement Local");
        }
        Map<String, String> inOrder = new LinkedHashMap<>();
        for (Vm vm : vms) {
            inOrder.put(vm.name(), placed.get(vm.name()));
        }
        return inOrder;
    }

    static List<Vm> largestFirst(List<Vm> vms) {
        List<Vm> order = new ArrayList<>(vms);
        order.sort(Comparator.comparingLong(Vm::memoryMiB).reversed().thenComparing(Vm::name));
        return order;
    }

    /** Each VM in {@code order} to the node with the most room left; the VMs that fit nowhere go to {@code unplaced}. */
    static Map<String, String> firstPass(List<Vm> order, List<Node> nodes, List<String> unplaced) {
        Map<String, Long> left = new HashMap<>();
        nodes.forEach(n -> left.put(n.name(), n.roomMiB()));
        Map<String, String> placed = new LinkedHashMap<>();
        for (Vm vm : order) {
            Node best = null;
            long bestLeft = -1;
            for (Node n : nodes) {
                long after = left.get(n.name()) - need(vm, n);
                if (n.name().equals(vm.node()) || after < 0) {
                    continue;
                }
                if (after > bestLeft || after == bestLeft && n.name().compareTo(best.name()) < 0) {
                    best = n;
                    bestLeft = after;
                }
            }
            if (best == null) {
                unplaced.add(vm.name() + " of node " + vm.node() + " (" + vm.memoryMiB() + " MiB)");
                continue;
            }
            left.merge(best.name(), -need(vm, best), Long::sum);
            placed.put(vm.name(), best.name());
        }
        return placed;
    }

    /**
     * Depth first over the VMs, largest first, each tried on the nodes with the most room left first. Two nodes with the
     * same room left and the same overhead are the same choice unless a VM still to place runs on one of them: only the
     * first is tried.
     */
    private static final class Search {
        private final List<Vm> order;
        private final List<Node> nodes;
        private final long[] left;
        private final int[] chosen;
        /** ownAhead.get(i): the nodes the VMs from i on run on. */
        private final List<Set<String>> ownAhead = new ArrayList<>();
        /** needAhead[i]: the least the VMs from i on take, all together (each with the smallest overhead). */
        private final long[] needAhead;
        int steps;

        Search(List<Vm> order, List<Node> nodes) {
            this.order = order;
            this.nodes = nodes;
            this.left = nodes.stream().mapToLong(Node::roomMiB).toArray();
            this.chosen = new int[order.size()];
            this.needAhead = new long[order.size() + 1];
            long leastOverhead = nodes.stream().mapToLong(Node::copyOverheadMiB).min().orElse(0);
            Set<String> own = new HashSet<>();
            for (int i = order.size() - 1; i >= 0; i--) {
                own.add(order.get(i).node());
                ownAhead.add(0, Set.copyOf(own));
                needAhead[i] = needAhead[i + 1] + order.get(i).memoryMiB() + leastOverhead;
            }
            ownAhead.add(Set.of());
        }

        boolean run(int i) {
            if (i == order.size()) {
                return true;
            }
            if (++steps > SEARCH_BUDGET || needAhead[i] > roomLeft()) {
                return false;
            }
            Vm vm = order.get(i);
            List<Integer> candidates = new ArrayList<>();
            for (int n = 0; n < nodes.size(); n++) {
                if (!nodes.get(n).name().equals(vm.node()) && left[n] >= need(vm, nodes.get(n))) {
                    candidates.add(n);
                }
            }
            candidates.sort(Comparator.comparingLong((Integer n) -> left[n]).reversed());
            Set<String> tried = new HashSet<>();
            for (int n : candidates) {
                Node node = nodes.get(n);
                if (!ownAhead.get(i + 1).contains(node.name()) && !tried.add(left[n] + "/" + node.copyOverheadMiB())) {
                    continue;
                }
                left[n] -= need(vm, node);
                chosen[i] = n;
                if (run(i + 1)) {
                    return true;
                }
                left[n] += need(vm, node);
                if (steps > SEARCH_BUDGET) {
                    return false;
                }
            }
            return false;
        }

        /** All the room the nodes have left (a node's may be unbounded: the sum stops at Long.MAX_VALUE). */
        private long roomLeft() {
            long sum = 0;
            for (long l : left) {
                sum = l > Long.MAX_VALUE - sum ? Long.MAX_VALUE : sum + l;
            }
            return sum;
        }

        Map<String, String> placed() {
            Map<String, String> placed = new LinkedHashMap<>();
            for (int i = 0; i < order.size(); i++) {
                placed.put(order.get(i).name(), nodes.get(chosen[i]).name());
            }
            return placed;
        }
    }

    private static long need(Vm vm, Node node) {
        return vm.memoryMiB() + node.copyOverheadMiB();
    }
}
