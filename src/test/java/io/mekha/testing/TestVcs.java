package io.mekha.testing;

import io.mekha.agent.runtime.NetworkAttachment;
import io.mekha.agent.runtime.VmSpec;
import io.mekha.local.GuestImage;
import java.util.ArrayList;
import java.util.List;

/** Virtual clusters for tests: N VMs on one segment running the ringnet workload. */
public final class TestVcs {
    private TestVcs() {}

    public static List<VmSpec> ring(int nodes, int hubPort, long memoryMiB, String ringArgs) {
        GuestImage guest = GuestImage.locate().requireBuilt();
        List<VmSpec> vms = new ArrayList<>();
        for (int i = 0; i < nodes; i++) {
            NetworkAttachment nic = new NetworkAttachment("lan", hubPort, String.format("52:54:00:77:00:%02x", i + 1),
                    "10.77.0." + (i + 1) + "/24");
            vms.add(new VmSpec("vm" + (i + 1), memoryMiB, 1, guest.kernel(), guest.initrd(), null,
                    "ringnet -i " + i + " -n " + nodes + " " + ringArgs, null, nic, null));
        }
        return vms;
    }
}
