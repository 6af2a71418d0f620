package io.mekha.agent.qemu;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Settings of the local VM runtime.
 *
 * @param workDir where each QEMU instance gets a directory (console, QMP socket, log)
 * @param accelerator the accelerator VMs run with
 * @param bootTimeout how long a guest may take to print its boot marker before it counts as hung
 * @param qmpTimeout how long QEMU may take to open and answer its monitor
 * @param vmNice the niceness QEMU's threads run at, all but its main loop (which takes the monitor's commands and stays at
 *     the agent's): above the agent's (0), so that on a host whose CPUs the VMs keep busy the agent still acts at its
 *     rendezvous instants (measured here, three busy TCG guests on two cores: a stop sent up to 16 ms late at 0, within
 *     1 ms at 10); VMs lose nothing on an idle host
 */
public record RuntimeConfig(String qemuBinary, Path workDir, Accelerator accelerator, Duration bootTimeout,
                            Duration qmpTimeout, int vmNice) {

    public static final String DEFAULT_QEMU = "qemu-system-x86_64";
    /** {@code $MEKHA_VM_NICE} sets another (0: QEMU as the agent). */
    public static final int DEFAULT_VM_NICE = 10;

    public RuntimeConfig(String qemuBinary, Path workDir, Accelerator accelerator, Duration bootTimeout, Duration qmpTimeout) {
        this(qemuBinary, workDir, accelerator, bootTimeout, qmpTimeout, defaultNice());
    }

    public RuntimeConfig {
        if (vmNice < 0 || vmNice > 19) {
            throw new IllegalArgumentException("a VM's niceness is 0 to 19, got " + vmNice);
        }
    }

    private static int defaultNice() {
        String nice = System.getenv("MEKHA_VM_NICE");
        try {
            return nice == null || nice.isBlank() ? DEFAULT_VM_NICE : Integer.parseInt(nice.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("MEKHA_VM_NICE must be a whole number from 0 to 19, got '" + nice + "'");
        }
    }

    /** Defaults; {@code $MEKHA_QEMU} names another QEMU binary (e.g. to run everything on an older QEMU). */
    public static RuntimeConfig defaults(Path workDir) {
        String qemu = System.getenv("MEKHA_QEMU");
        return new RuntimeConfig(qemu == null || qemu.isBlank() ? DEFAULT_QEMU : qemu, workDir, Accelerator.TCG,
                Duration.ofSeconds(90), Duration.ofSeconds(15));
    }

    /** qemu-img beside the QEMU binary when that is a path, else the one on PATH. */
    public String qemuImg() {
        if (qemuBinary.contains("/")) {
            java.nio.file.Path sibling = java.nio.file.Path.of(qemuBinary).resolveSibling("qemu-img");
            if (java.nio.file.Files.isExecutable(sibling)) {
                return sibling.toString();
            }
        }
        return "qemu-img";
    }

    public RuntimeConfig withAccelerator(Accelerator accel) {
        return new RuntimeConfig(qemuBinary, workDir, accel, bootTimeout, qmpTimeout, vmNice);
    }

    public RuntimeConfig withQemuBinary(String binary) {
        return new RuntimeConfig(binary, workDir, accelerator, bootTimeout, qmpTimeout, vmNice);
    }

    /** The same settings over another work directory (a second node's, say). */
    public RuntimeConfig withWorkDir(Path dir) {
        return new RuntimeConfig(qemuBinary, dir, accelerator, bootTimeout, qmpTimeout, vmNice);
    }

    public RuntimeConfig withTimeouts(Duration boot, Duration qmp) {
        return new RuntimeConfig(qemuBinary, workDir, accelerator, boot, qmp, vmNice);
    }
}
