package io.mekha.protocol;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which node holds each VM's level-0 partner copy: never the VM's own node (losing one node must never take both copies
 * of a VM), and within what each node lends. Largest VMs first, each to the node with the most room left; where a VM
 * fits nowhere, the whole plan is refused with every VM that does not fit and why, before anything is paused.
 */
final class PartnerPlan {
    /** A VM to place: its node, and its guest RAM. */
    record Vm(String name, String node, long memoryMiB) {}

    /**
     * A node that may hold copies: the room it has for them, and what one copy takes beyond the guest RAM there.
     */
    record Node(String name, long roomMiB, long copyOverheadMiB) {}

    private PartnerPlan() {}

    /** VM to the node that holds its partner copy; refused with what does not fit. */
    static Map<String, String> place(List<Vm> vms, List<Node> nodes) throws CheckpointFailedException {
        Map<String, Long> left = new HashMap<>();
        nodes.forEach(n -> left.put(n.name(), n.roomMiB()));
        List<Vm> order = new ArrayList<>(vms);
        order.sort(Comparator.comparingLong(Vm::memoryMiB).reversed().thenComparing(Vm::name));
        Map<String, String> placed = new LinkedHashMap<>();
        List<String> unplaced = new ArrayList<>();
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
        if (!unplaced.isEmpty()) {
            List<String> rooms = nodes.stream().map(n -> n.name() + " " + n.roomMiB() + " MiB").toList();
            throw new CheckpointFailedException("level 0 on partner nodes does not fit: no node other than its own has room for "
                    + String.join(", ", unplaced) + " (room the nodes lend now: " + (rooms.isEmpty() ? "no other node takes copies" : String.join(", ", rooms))
                    + "); lend more memory (the agents' --lend-memory), checkpoint fewer VMs, or use placement Local");
        }
        Map<String, String> inOrder = new LinkedHashMap<>();
        vms.forEach(vm -> inOrder.put(vm.name(), placed.get(vm.name())));
        return inOrder;
    }

    private static long need(Vm vm, Node node) {
        return vm.memoryMiB() + node.copyOverheadMiB();
    }
}
