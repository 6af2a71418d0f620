package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.kubevirt.KubeVirtVmRuntime;
import io.mekha.agent.qemu.Accelerator;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Guest RAM and accelerator as the agent reads them off a launcher QEMU's command line (libvirt's forms and plain ones). */
@Tag("fast")
class LauncherCommandLineTest {

    @Test
    void guestMemoryInEveryFormQemuTakes() {
        assertThat(KubeVirtVmRuntime.memoryMiB(List.of("qemu-kvm", "-m", "size=1048576k,slots=0,maxmem=2097152k"))).isEqualTo(1024);
        assertThat(KubeVirtVmRuntime.memoryMiB(List.of("qemu-system-x86_64", "-m", "256"))).isEqualTo(256);
        assertThat(KubeVirtVmRuntime.memoryMiB(List.of("qemu-system-x86_64", "-m", "2G"))).isEqualTo(2048);
        assertThat(KubeVirtVmRuntime.memoryMiB(List.of("qemu-system-x86_64", "-m", "512M"))).isEqualTo(512);
        assertThat(KubeVirtVmRuntime.memoryMiB(List.of("qemu-system-x86_64"))).as("none given").isZero();
    }

    @Test
    void acceleratorFromAccelOrMachineAndKvmWhenUnsaid() {
        assertThat(KubeVirtVmRuntime.accelerator(List.of("qemu-kvm", "-accel", "kvm"))).isEqualTo(Accelerator.KVM);
        assertThat(KubeVirtVmRuntime.accelerator(List.of("qemu-kvm", "-accel", "tcg,tb-size=128"))).isEqualTo(Accelerator.TCG);
        assertThat(KubeVirtVmRuntime.accelerator(List.of("qemu-kvm", "-machine", "pc-q35-rhel9.6.0,usb=off,accel=tcg"))).isEqualTo(Accelerator.TCG);
        assertThat(KubeVirtVmRuntime.accelerator(List.of("qemu-kvm", "-machine", "pc-q35-rhel9.6.0,usb=off"))).isEqualTo(Accelerator.KVM);
    }
}
