package io.mekha.local;

import io.mekha.model.NetworkAttachment;
import io.mekha.model.VmSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Mekha's MPI guest image (built by src/guest/build-mpi-image.sh): Debian with OpenMPI, HPC
 * Challenge, sshd and qemu-guest-agent, in {@code $MEKHA_MPI_IMAGE_DIR} or {@code ~/.cache/mekha/mpi-image}.
 */
public record MpiImage(Path dir) {

    public static MpiImage locate() {
        return new MpiImage(GuestImage.cacheDir("MEKHA_MPI_IMAGE_DIR", "mpi-image"));
    }

    public Path kernel() {
        return dir.resolve("vmlinuz");
    }

    public Path initrd() {
        return dir.resolve("initrd.img");
    }

    /** The base disk every VM runs on an overlay of. */
    public Path disk() {
        return dir.resolve("disk.qcow2");
    }

    public boolean isBuilt() {
        return Files.isRegularFile(kernel()) && Files.isRegularFile(initrd()) && Files.isRegularFile(disk());
    }

    public MpiImage requireBuilt() {
        if (!isBuilt()) {
            throw new IllegalStateException("the MPI guest image is not built in " + dir
                    + ": run src/guest/build-mpi-image.sh as root (scripts/test.sh does it for you)");
        }
        return this;
    }

    /**
     * A VC of {@code count} VMs named vm1..vmN on segment {@code lan} (addresses 10.77.0.1..N), each
     * knowing the others by name, as mpirun needs.
     */
    public List<VmSpec> cluster(int count, long memoryMiB, int hubPort) {
        StringBuilder hosts = new StringBuilder();
        for (int i = 1; i <= count; i++) {
            hosts.append(i == 1 ? "" : ",").append("vm").append(i).append(":10.77.0.").append(i);
        }
        List<VmSpec> vms = new ArrayList<>();
        for (int i = 1; i <= count; i++) {
            NetworkAttachment net = new NetworkAttachment("lan", hubPort, String.format("52:54:00:77:00:%02x", i), "10.77.0." + i + "/24");
            vms.add(VmSpec.named("vm" + i)
                    .memoryMiB(memoryMiB).boot(kernel(), initrd())
                    .append("root=/dev/vda rw init=/sbin/mekha-init mekha.hosts=" + hosts).disk(disk()).network(net)
                    .guestAgent(true).build());
        }
        return vms;
    }
}
