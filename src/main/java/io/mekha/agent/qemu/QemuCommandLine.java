package io.mekha.agent.qemu;

import io.mekha.agent.qemu.Accelerator;
import io.mekha.model.NetworkAttachment;
import io.mekha.model.VmSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds the QEMU command line of a VM. A shadow gets the very same machine and devices (so the
 * migration stream fits) plus {@code -incoming defer -S}; only its console and monitor paths differ.
 */
public final class QemuCommandLine {
    /** The drive id of a VM's disk. */
    public static final String DISK_ID = "disk0";

    private final String qemuBinary;

    public QemuCommandLine(String qemuBinary) {
        this.qemuBinary = qemuBinary;
    }

    /**
     * Files a QEMU instance owns in its directory.
     *
     * @param runStates QEMU's trace of its run-state changes ({@link RunStateTrace}), apart from its log so that an error
     *     message stays the log's last line
     */
    public record InstancePaths(Path dir, Path qmpSocket, Path console, Path log, Path guestAgentSocket, Path runStates) {
        public static InstancePaths in(Path dir) {
            return new InstancePaths(dir, dir.resolve("qmp.sock"), dir.resolve("console.log"), dir.resolve("qemu.log"),
                    dir.resolve("qga.sock"), dir.resolve("runstate.log"));
        }
    }

    /**
     * @param nicPort the local UDP port of this instance's NIC (ignored without a network)
     */
    /**
     * @param disk the instance's own disk overlay (null without a disk)
     */
    public List<String> build(VmSpec spec, Accelerator accel, InstancePaths paths, int nicPort, boolean incoming, Path disk) {
        if (accel == Accelerator.AUTO) {
            throw new IllegalArgumentException("resolve AUTO to TCG or KVM before building a command line");
        }
        List<String> args = new ArrayList<>();
        args.add(qemuBinary);
        args.addAll(List.of("-name", "guest=" + spec.name() + ",debug-threads=on"));
        args.addAll(List.of("-machine", "q35"));
        if (accel == Accelerator.KVM) {
            args.addAll(List.of("-accel", "kvm", "-cpu", "host"));
        } else {
            // a smaller translation cache keeps each TCG VM's host footprint down
            args.addAll(List.of("-accel", "tcg,tb-size=128"));
        }
        args.addAll(List.of("-m", spec.memoryMiB() + "M", "-smp", Integer.toString(spec.cpus())));
        args.addAll(List.of("-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"));
        args.addAll(List.of("-chardev", "file,id=serial0,path=" + paths.console(), "-serial", "chardev:serial0"));
        args.addAll(List.of("-qmp", "unix:" + paths.qmpSocket() + ",server=on,wait=off"));
        // the instant the guest's clock freezes at a stop (RunStateTrace); timestamps on its messages too
        args.addAll(List.of("-msg", "timestamp=on", "-trace", "enable=runstate_set", "-D", paths.runStates().toString()));
        if (spec.kernel() != null) {
            args.addAll(List.of("-kernel", spec.kernel().toString()));
            if (spec.initrd() != null) {
                args.addAll(List.of("-initrd", spec.initrd().toString()));
            }
            args.addAll(List.of("-append", kernelArguments(spec)));
        }
        if (disk != null) {
            // id disk0: the name blockdev-snapshot-sync freezes it by at a checkpoint's cut
            args.addAll(List.of("-drive", "file=" + disk + ",if=virtio,format=qcow2,cache=writeback,id=" + DISK_ID));
        }
        if (spec.network() != null) {
            NetworkAttachment net = spec.network();
            args.addAll(List.of("-netdev", "dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port=" + nicPort
                            + ",remote.type=inet,remote.host=127.0.0.1,remote.port=" + net.hubPort(),
                    "-device", "virtio-net-pci,netdev=net0,mac=" + net.mac()));
        }
        if (spec.guestAgent()) {
            args.addAll(List.of("-device", "virtio-serial-pci,id=mekha-serial0",
                    "-chardev", "socket,id=qga0,path=" + paths.guestAgentSocket() + ",server=on,wait=off",
                    "-device", "virtserialport,bus=mekha-serial0.0,chardev=qga0,name=org.qemu.guest_agent.0"));
        }
        if (incoming) {
            args.addAll(List.of("-incoming", "defer", "-S"));
        }
        return args;
    }

    /**
     * The kernel command line of a VM booted from its kernel: console, network address, workload and extra arguments.
     * {@code no_timer_check}: early in boot the x86 kernel counts timer ticks over a short busy wait and panics ("IO-APIC
     * + timer doesn't work!") when too few arrive; a TCG vCPU on a loaded host delivers them late, and a guest died
     * that way once in our test runs (its stack ending in start_kernel at 0.076 s). Hypervisor guests skip the check.
     */
    public static String kernelArguments(VmSpec spec) {
        StringBuilder append = new StringBuilder("console=ttyS0 quiet panic=-1 no_timer_check");
        if (spec.network() != null && spec.network().address() != null) {
            append.append(" mekha.ip=").append(spec.network().address());
        }
        if (spec.workload() != null && !spec.workload().isBlank()) {
            append.append(" mekha.run=").append(spec.workload().trim().replaceAll("\\s+", ","));
        }
        if (spec.append() != null && !spec.append().isBlank()) {
            append.append(' ').append(spec.append().trim());
        }
        return append.toString();
    }
}
