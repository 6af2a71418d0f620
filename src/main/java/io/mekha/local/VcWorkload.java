package io.mekha.local;

import io.mekha.model.NetworkAttachment;
import io.mekha.model.VmSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The kinds of work a virtual cluster does, as the VC benchmark and the cut-at-Ts tests run them on
 * the test guest: every VM also prints its clocks (clockprobe, {@code mekha.probe}) so that a
 * restart's clock jump is read off the guest's own clock, and every workload can be checked for
 * exactness after a restart (the ring's sums, the dirtier's hashes).
 */
public enum VcWorkload {
    /** Every VM rewrites 96 MiB as fast as it can: the dirty set never stops moving. */
    MEMORY_HEAVY("memory-heavy", "every VM rewrites 96 MiB of its memory as fast as it can"),
    /** The demo's TCP ring: every step each VM rewrites 4 MiB and passes its state on. */
    RING("ring", "a TCP ring: each step every VM rewrites 4 MiB and passes its state on (30 ms apart)"),
    /** A TCP ring of small messages every 10 ms that dirties two pages a step: QEMU's favourite case to finish early. */
    CHATTY("chatty", "a TCP ring passing small messages every 10 ms, two pages dirtied a step"),
    /** Nothing but the clock probe. */
    IDLE("idle", "nearly idle: only the clock probe runs"),
    /** vm1 rewrites 96 MiB; the others pass small messages: the VC that cut 300 ms early in wave 1. */
    MIXED("mixed", "vm1 rewrites 96 MiB, the other VMs pass small messages every 10 ms");

    /** How often each guest prints its clocks. */
    public static final int PROBE_MS = 20;
    private static final String DIRTIER = "dirtier -m 96 -d 8 -i 0";

    private final String label;
    private final String description;

    VcWorkload(String label, String description) {
        this.label = label;
        this.description = description;
    }

    public String label() {
        return label;
    }

    public String description() {
        return description;
    }

    public static VcWorkload parse(String text) {
        for (VcWorkload w : values()) {
            if (w.label.equalsIgnoreCase(text) || w.name().equalsIgnoreCase(text)) {
                return w;
            }
        }
        throw new IllegalArgumentException("unknown workload '" + text + "': use memory-heavy, ring, chatty, idle or mixed");
    }

    /** The ring the VMs from {@code first} on run (null for the workloads without one). */
    public RingCluster ring(int vms, int steps) {
        return switch (this) {
            case RING -> new RingCluster(vms, steps, 30, 16, 4);
            case CHATTY -> RingCluster.chatty(vms, steps, 10, 2);
            case MIXED -> RingCluster.chatty(vms - 1, steps, 10, 2);
            case MEMORY_HEAVY, IDLE -> null;
        };
    }

    /** Whether VM {@code vm} (0-based) runs the dirtier, whose rounds per second measure the guest's own speed. */
    public boolean dirtier(int vm) {
        return this == MEMORY_HEAVY || (this == MIXED && vm == 0);
    }

    /** The first VM (0-based) in the ring: vm1 is the dirtier in MIXED. */
    public int ringFirst() {
        return this == MIXED ? 1 : 0;
    }

    /** The VC: {@code vms} VMs of {@code memoryMiB} on one segment (hub at {@code hubPort}), vm1..vmN at 10.77.0.1..N. */
    public List<VmSpec> specs(GuestImage guest, int hubPort, int vms, long memoryMiB, int steps) {
        RingCluster ring = ring(vms, steps);
        List<VmSpec> specs = new ArrayList<>();
        for (int i = 0; i < vms; i++) {
            NetworkAttachment nic = new NetworkAttachment("lan", hubPort, String.format("52:54:00:77:00:%02x", i + 1), "10.77.0." + (i + 1) + "/24");
            specs.add(VmSpec.named("vm" + (i + 1)).memoryMiB(memoryMiB).boot(guest.kernel(), guest.initrd()).workload(workload(i, ring))
                    .append("mekha.probe=" + PROBE_MS).network(nic).guestAgent(true).build());
        }
        return specs;
    }

    private String workload(int vm, RingCluster ring) {
        return switch (this) {
            case MEMORY_HEAVY -> DIRTIER;
            case IDLE -> null;
            case MIXED -> vm == 0 ? DIRTIER : ring.workload(vm - 1) + " -b 2";
            case RING, CHATTY -> ring.workload(vm);
        };
    }

    /**
     * What is wrong with how the VMs continued after a restart, or nothing: the ring's sums against an uninterrupted
     * run, each dirtier's hashes against those its own source printed for the same rounds.
     *
     * @param before each VM's console before the crash (the source ran past the cut)
     * @param after each VM's console since the restart
     */
    public List<String> mismatches(Map<String, List<String>> before, Map<String, List<String>> after, int vms, int steps) {
        List<String> problems = new ArrayList<>();
        RingCluster ring = ring(vms, steps);
        for (int i = 0; i < vms; i++) {
            String vm = "vm" + (i + 1);
            if (dirtier(i)) {
                TreeMap<Long, String[]> both = DirtierLog.overlap(DirtierLog.parse(before.get(vm)), DirtierLog.parse(after.get(vm)));
                if (both.isEmpty()) {
                    problems.add(vm + ": no dirtier round printed both before the crash and after the restart");
                }
                both.forEach((round, hashes) -> {
                    if (!hashes[0].equals(hashes[1])) {
                        problems.add(vm + " round " + round + ": hash " + hashes[1] + " after the restart, " + hashes[0] + " before");
                    }
                });
            } else if (ring != null) {
                int node = i - ringFirst();
                TreeMap<Long, Long> printed = RingReference.printed(after.get(vm), node);
                if (printed.isEmpty()) {
                    problems.add(vm + ": no ring step printed after the restart");
                    continue;
                }
                long[][] reference = ring.reference((int) Math.min(Integer.MAX_VALUE, printed.lastKey()));
                RingReference.mismatches(printed, reference, node).forEach(m -> problems.add(vm + ": " + m));
            }
        }
        return problems;
    }
}
