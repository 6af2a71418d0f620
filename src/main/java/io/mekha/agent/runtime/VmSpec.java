package io.mekha.agent.runtime;

import java.nio.file.Path;
import java.util.Objects;

/**
 * What a VM is: everything needed to start it, and to start a shadow with the identical
 * machine and devices. Validated by whoever builds it (see {@code io.mekha.local.VirtualClusterFile}).
 *
 * @param kernel direct-boot kernel, or null when booting from {@code disk}
 * @param workload command the test guest's init runs (kernel argument mekha.run), or null
 * @param disk a qcow2 disk image, or null
 * @param network the VM's NIC, or null for none
 * @param bootMarker console text that proves the guest booted (the boot watchdog's signal)
 * @param guestAgent whether the VM gets a virtio-serial port for qemu-guest-agent (needed by the
 *     Step and Slew time policies)
 */
public record VmSpec(
        String name,
        long memoryMiB,
        int cpus,
        Path kernel,
        Path initrd,
        String append,
        String workload,
        Path disk,
        NetworkAttachment network,
        String bootMarker,
        boolean guestAgent) {

    public static final String DEFAULT_BOOT_MARKER = "MEKHA-GUEST READY";

    public VmSpec {
        Objects.requireNonNull(name, "name");
        if (bootMarker == null || bootMarker.isBlank()) {
            bootMarker = DEFAULT_BOOT_MARKER;
        }
    }

    public VmSpec withGuestAgent(boolean agent) {
        return new VmSpec(name, memoryMiB, cpus, kernel, initrd, append, workload, disk, network, bootMarker, agent);
    }
}
