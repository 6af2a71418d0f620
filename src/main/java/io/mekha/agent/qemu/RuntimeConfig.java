package io.mekha.agent.qemu;

import io.mekha.agent.qemu.Accelerator;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Settings of the local VM runtime.
 *
 * @param workDir where each QEMU instance gets a directory (console, QMP socket, log)
 * @param accelerator the accelerator VMs run with
 * @param bootTimeout how long a guest may take to print its boot marker before it counts as hung
 * @param qmpTimeout how long QEMU may take to open and answer its monitor
 */
public record RuntimeConfig(String qemuBinary, Path workDir, Accelerator accelerator, Duration bootTimeout,
                            Duration qmpTimeout) {

    public static final String DEFAULT_QEMU = "qemu-system-x86_64";

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
        return new RuntimeConfig(qemuBinary, workDir, accel, bootTimeout, qmpTimeout);
    }

    public RuntimeConfig withQemuBinary(String binary) {
        return new RuntimeConfig(binary, workDir, accelerator, bootTimeout, qmpTimeout);
    }

    public RuntimeConfig withTimeouts(Duration boot, Duration qmp) {
        return new RuntimeConfig(qemuBinary, workDir, accelerator, boot, qmp);
    }
}
