package io.mekha.local;

import io.mekha.model.NetworkAttachment;
import io.mekha.model.VmSpec;
import java.util.ArrayList;
import java.util.List;

/**
 * A VC running the guest's {@code ringnet} workload: N VMs on one segment, addresses
 * 10.77.0.1..N, each a node of the TCP ring. Used by the demo and the tests.
 */
public record RingCluster(int nodes, int steps, int intervalMs, int bufferMib, int dirtyMib) {

    public String workload(int node) {
        return "ringnet -i " + node + " -n " + nodes + " -m " + bufferMib + " -d " + dirtyMib + " -s " + steps + " -t " + intervalMs;
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
        return RingReference.sums(nodes, steps, bufferMib, dirtyMib);
    }
}
