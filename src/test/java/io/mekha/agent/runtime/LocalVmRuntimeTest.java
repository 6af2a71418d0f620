package io.mekha.agent.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.local.GuestImage;
import io.mekha.local.VirtualClusterFile;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpEvent;
import io.mekha.qmp.QmpEventQueue;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The local runtime on real QEMU: boot, QMP, console, and the ways a start can go wrong. */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class LocalVmRuntimeTest {

    @TempDir
    Path work;

    @Test
    void aVmFromAYamlDescriptionBootsAnswersQmpAndWritesItsConsoleToAFile() throws Exception {
        Path file = work.resolve("vc.yaml");
        Files.writeString(file, """
                name: one
                vms:
                  - name: vm1
                    memory: 256Mi
                    workload: dirtier -m 16 -d 4 -i 200
                """);
        VmSpec spec = VirtualClusterFile.load(file).vm("vm1").orElseThrow();
        try (LocalVmRuntime runtime = new LocalVmRuntime(RuntimeConfig.defaults(work))) {
            QemuVm vm = runtime.start(spec);
            assertThat(vm.accelerator()).isEqualTo(Accelerator.TCG);
            assertThat(vm.qmp().execute("query-status").path("status").asText()).isEqualTo("running");
            assertThat(vm.console().awaitLine(l -> l.contains("DIRTIER round=2"), Duration.ofSeconds(60))).isPresent();
            // QEMU's main loop (its monitor) at the agent's niceness, its vCPU at the VMs' (threads QEMU starts later, from
            // the main loop, take the main loop's)
            int agentNice = niceness(Path.of("/proc/self/stat"));
            int vmNice = RuntimeConfig.defaults(work).vmNice();
            Path tasks = Path.of("/proc", Long.toString(vm.pid()), "task");
            assertThat(niceness(tasks.resolve(Long.toString(vm.pid())).resolve("stat"))).as("the main loop").isEqualTo(agentNice);
            try (var threads = Files.list(tasks)) {
                List<Path> vcpus = threads.filter(t -> comm(t).startsWith("CPU ")).toList();
                assertThat(vcpus).as("vCPU threads (named with debug-threads=on)").isNotEmpty();
                for (Path vcpu : vcpus) {
                    assertThat(niceness(vcpu.resolve("stat"))).as("thread %s", comm(vcpu)).isEqualTo(vmNice > 0 ? vmNice : agentNice);
                }
            }

            QmpEventQueue events = vm.qmp().listen(Set.of("STOP", "RESUME"));
            vm.qmp().execute("stop");
            QmpEvent stop = events.await(e -> e.name().equals("STOP"), Duration.ofSeconds(5), "STOP");
            vm.qmp().execute("cont");
            QmpEvent resume = events.await(e -> e.name().equals("RESUME"), Duration.ofSeconds(5), "RESUME");
            assertThat(resume.timestamp()).isAfterOrEqualTo(stop.timestamp());
            JsonNode version = vm.qmp().execute("query-version");
            assertThat(version.path("qemu").path("major").asInt()).isGreaterThanOrEqualTo(7);

            vm.shutdown(Duration.ofSeconds(5));
            assertThat(vm.isAlive()).isFalse();
        }
    }

    private static String comm(Path task) {
        try {
            return Files.readString(task.resolve("comm")).trim();
        } catch (java.io.IOException e) {
            return ""; // the thread ended
        }
    }

    /** Field 19 of a /proc stat line: the niceness (the name in parentheses may hold spaces, so counted after it). */
    private static int niceness(Path stat) throws java.io.IOException {
        String line = Files.readString(stat);
        return Integer.parseInt(line.substring(line.lastIndexOf(')') + 2).split(" ")[16]);
    }

    @Test
    void autoFallsBackToTcgWhenKvmCannotBootTheGuest() throws Exception {
        RuntimeConfig config = RuntimeConfig.defaults(work).withAccelerator(Accelerator.AUTO);
        try (LocalVmRuntime runtime = new LocalVmRuntime(config)) {
            QemuVm vm = runtime.start(TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 200"));
            assertThat(vm.console().text()).contains(VmSpec.DEFAULT_BOOT_MARKER);
            boolean kvmUsable = Files.isWritable(Path.of("/dev/kvm"));
            if (!kvmUsable) {
                assertThat(vm.accelerator()).as("no /dev/kvm: straight to TCG").isEqualTo(Accelerator.TCG);
            }
            // where KVM is present but hangs (nested KVM on these machines) the guest booted under TCG
            // after the watchdog; where KVM works it booted under KVM. Either way it booted.
            assertThat(vm.accelerator()).isIn(Accelerator.TCG, Accelerator.KVM);
        }
    }

    @Test
    void aMissingKernelFileGetsQemusOwnWordsAndNoProcessIsLeft() {
        GuestImage guest = GuestImage.locate().requireBuilt();
        VmSpec spec = VmSpec.named("vm1").boot(work.resolve("no-such-vmlinuz"), guest.initrd()).build();
        try (LocalVmRuntime runtime = new LocalVmRuntime(RuntimeConfig.defaults(work))) {
            assertThatThrownBy(() -> runtime.start(spec))
                    .isInstanceOf(VmStartException.class)
                    .hasMessageContaining("VM 'vm1'")
                    .hasMessageContaining("no-such-vmlinuz");
            assertThat(runtime.running()).isEmpty();
        }
    }

    @Test
    void anImpossibleMemorySizeGetsAClearErrorAndNoProcessIsLeft() {
        VmSpec spec = TestVms.dirtier("vm1", 64L * 1024 * 1024 * 1024, "-m 16");
        try (LocalVmRuntime runtime = new LocalVmRuntime(RuntimeConfig.defaults(work))) {
            assertThatThrownBy(() -> runtime.start(spec))
                    .isInstanceOf(VmStartException.class)
                    .hasMessageContaining("VM 'vm1'")
                    .hasMessageContaining("QEMU said");
            assertThat(runtime.running()).isEmpty();
        }
    }

    @Test
    void aMonitorThatNeverAnswersIsReportedAndTheProcessKilled() throws Exception {
        // stands in for a hung QEMU: it listens on the QMP socket it was given and never says a word
        Path hung = work.resolve("hung-qemu");
        Files.writeString(hung, """
                #!/bin/sh
                sock=$(echo "$@" | sed -n 's/.*-qmp unix:\\([^,]*\\),.*/\\1/p')
                exec socat UNIX-LISTEN:"$sock",fork SYSTEM:"sleep 3600"
                """);
        Files.setPosixFilePermissions(hung, PosixFilePermissions.fromString("rwxr-xr-x"));
        RuntimeConfig config = RuntimeConfig.defaults(work).withQemuBinary(hung.toString())
                .withTimeouts(Duration.ofSeconds(30), Duration.ofSeconds(3));
        try (LocalVmRuntime runtime = new LocalVmRuntime(config)) {
            assertThatThrownBy(() -> runtime.start(TestVms.dirtier("vm1", 256, "-m 16")))
                    .isInstanceOf(VmStartException.class)
                    .hasMessageContaining("VM 'vm1'")
                    .hasMessageContaining("monitor did not answer")
                    .hasMessageContaining("no greeting")
                    .hasMessageContaining("QEMU was stopped");
            assertThat(runtime.running()).isEmpty();
        }
        assertThat(ProcessHandle.current().descendants().filter(ProcessHandle::isAlive)
                .map(p -> p.info().commandLine().orElse(""))
                .filter(c -> c.contains("socat") || c.contains("sleep 3600")))
                .as("the hung monitor's process tree is gone").isEmpty();
    }

    @Test
    void aMissingQemuBinarySaysHowToInstallIt() {
        RuntimeConfig config = RuntimeConfig.defaults(work).withQemuBinary("/nonexistent/qemu-system-x86_64");
        try (LocalVmRuntime runtime = new LocalVmRuntime(config)) {
            assertThatThrownBy(() -> runtime.start(TestVms.dirtier("vm1", 256, "-m 16")))
                    .isInstanceOf(VmStartException.class)
                    .hasMessageContaining("install-deps");
        }
    }
}
