package io.mekha.testing;

import io.mekha.local.GuestImage;
import io.mekha.local.RingCluster;
import io.mekha.model.VmSpec;
import java.util.List;

/** Virtual clusters for tests: N VMs on one segment running the ringnet workload. */
public final class TestVcs {
    private TestVcs() {}

    public static List<VmSpec> ring(RingCluster ring, int hubPort, long memoryMiB) {
        return ring.specs(GuestImage.locate().requireBuilt(), hubPort, memoryMiB);
    }
}
