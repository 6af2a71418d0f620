package io.mekha.testing;

import io.mekha.agent.runtime.VmSpec;
import io.mekha.local.GuestImage;

/** VM descriptions for tests, on the project's test guest. */
public final class TestVms {
    private TestVms() {}

    public static VmSpec dirtier(String name, long memoryMiB, String dirtierArgs) {
        GuestImage guest = GuestImage.locate().requireBuilt();
        return new VmSpec(name, memoryMiB, 1, guest.kernel(), guest.initrd(), null,
                "dirtier " + dirtierArgs, null, null, null, false);
    }
}
