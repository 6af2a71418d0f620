package io.mekha.local;

import io.mekha.model.NetworkAttachment;
import io.mekha.model.VmSpec;
import java.util.ArrayList;
import java.util.List;

/**
 * A VC running the guest's {@code ringnet} workload: N VMs on one segment, addresses
 * 10.77.0.1..N, each a node of the TCP ring. Used by the demo and the tests.
 *
 * @param dirtyPages pages each node rewrites a step: {@code dirtyMib} whole MiB, or fewer (a chatty ring)
 */
public record RingCluster(int nodes, int steps, int intervalMs, int bufferMib, int dirtyMib, int dirtyPages) {
    private static final int PAGES_PER_MIB = 256;

    public RingCluster(int nodes, int steps, int intervalMs, int bufferMib, int dirtyMib) {
        this(nodes, steps, intervalMs, bufferMib, dirtyMib, dirtyMib * PAGES_PER_MIB);
    }

    /** A ring that sends a message every {@code intervalMs} and dirties only {@code pages} pages a step. */
    public static RingCluster chatty(int nodes, int steps, int intervalMs, int pages) {
        return new RingCluster(nodes, steps, intervalMs, 1, 0, pages);
    }

    public String workload(int node) {
        String dirty = dirtyPages == dirtyMib * PAGES_PER_MIB ? " -d " + dirtyMib : " -p " + dirtyPages;
        return "ringnet -i " + node + " -n " + nodes + " -m " + bufferMib + dirty + " -s " + steps + " -t " + intervalMs;
    }

    public List<VmSpec> specs(GuestImage guest, int hubPort, long memoryMiB) {
        List<VmSpec> vms = new ArrayList<>();
        for (int i = 0; i < nodes; i++) {
            NetworkAttachment nic = new NetworkAttachment("lan", hubPort, String.format("52:54:00:77:00:%02x", i + 1),
                    "10.77.0." + (i + 1) + "/24");
            vms.add(VmSpec.named(vmName(i))
                    .memoryMiB(memoryMiB).boot(guest.kernel(), guest.initrd()).workload(workload(i)).network(nic).guestAgent(true)
                    .build());
        }
        return vms;
    }

    public static String vmName(int node) {
        return "vm" + (node + 1);
    }

    public static int node(String vmName) {
        return Integer.parseInt(vmName.substring(2)) - 1;
    }

    /** What an uninterrupted run prints: sums[step-1][node]. */
    public long[][] reference() {
        return RingReference.sumsByPages(nodes, steps, bufferMib, dirtyPages);
    }

    /** The first {@code upTo} steps of an uninterrupted run (a long ring is checked only as far as it got). */
    public long[][] reference(int upTo) {
        return RingReference.sumsByPages(nodes, Math.min(steps, upTo), bufferMib, dirtyPages);
    }
}
