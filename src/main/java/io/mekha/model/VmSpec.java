package io.mekha.model;

import java.nio.file.Path;
import java.util.Objects;

/**
 * What a VM is: everything needed to start it, and to start a shadow with the identical
 * machine and devices. Validated by whoever builds it (the local mode checks its VC files, the operator its VMs).
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
        return toBuilder().guestAgent(agent).build();
    }

    /** A VM of 256 MiB and one vCPU, booting nothing yet: say what it boots and runs. */
    public static Builder named(String name) {
        return new Builder(name);
    }

    public Builder toBuilder() {
        return new Builder(name).memoryMiB(memoryMiB).cpus(cpus).kernel(kernel).initrd(initrd).append(append).workload(workload)
                .disk(disk).network(network).bootMarker(bootMarker).guestAgent(guestAgent);
    }

    /** Builds a {@link VmSpec} field by field; what is not set is absent (null, false), memory 256 MiB, one vCPU. */
    public static final class Builder {
        private final String name;
        private long memoryMiB = 256;
        private int cpus = 1;
        private Path kernel;
        private Path initrd;
        private String append;
        private String workload;
        private Path disk;
        private NetworkAttachment network;
        private String bootMarker;
        private boolean guestAgent;

        private Builder(String name) {
            this.name = name;
        }

        public Builder memoryMiB(long value) {
            memoryMiB = value;
            return this;
        }

        public Builder cpus(int value) {
            cpus = value;
            return this;
        }

        /** Direct boot: the kernel and its initramfs. */
        public Builder boot(Path kernelImage, Path initramfs) {
            return kernel(kernelImage).initrd(initramfs);
        }

        public Builder kernel(Path value) {
            kernel = value;
            return this;
        }

        public Builder initrd(Path value) {
            initrd = value;
            return this;
        }

        public Builder append(String value) {
            append = value;
            return this;
        }

        public Builder workload(String value) {
            workload = value;
            return this;
        }

        public Builder disk(Path value) {
            disk = value;
            return this;
        }

        public Builder network(NetworkAttachment value) {
            network = value;
            return this;
        }

        public Builder bootMarker(String value) {
            bootMarker = value;
            return this;
        }

        public Builder guestAgent(boolean value) {
            guestAgent = value;
            return this;
        }

        public VmSpec build() {
            return new VmSpec(name, memoryMiB, cpus, kernel, initrd, append, workload, disk, network, bootMarker, guestAgent);
        }
    }
}
