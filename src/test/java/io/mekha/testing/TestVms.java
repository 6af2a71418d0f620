package io.mekha.testing;

import io.mekha.local.GuestImage;
import io.mekha.model.VmSpec;

/** VM descriptions for tests, on the project's test guest. */
public final class TestVms {
    private TestVms() {}

    public static VmSpec dirtier(String name, long memoryMiB, String dirtierArgs) {
        GuestImage guest = GuestImage.locate().requireBuilt();
        return VmSpec.named(name).memoryMiB(memoryMiB).boot(guest.kernel(), guest.initrd()).workload("dirtier " + dirtierArgs).build();
    }
}
