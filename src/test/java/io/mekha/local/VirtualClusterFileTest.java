package io.mekha.local;

import io.mekha.model.MemorySize;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.qemu.Accelerator;
import io.mekha.model.VmSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading and validating local-mode VC descriptions. */
@Tag("fast")
class VirtualClusterFileTest {

    @TempDir
    Path dir;

    private Path kernel() throws Exception {
        Path k = dir.resolve("vmlinuz");
        Files.writeString(k, "not really a kernel");
        return k;
    }

    @Test
    void aValidFileGivesVmsWithSizesPathsAndASharedSegment() throws Exception {
        kernel();
        Files.writeString(dir.resolve("initrd.img"), "x");
        VirtualClusterSpec vc = VirtualClusterFile.parse("""
                name: demo
                accelerator: auto
                vms:
                  - name: vm1
                    memory: 1Gi
                    cpus: 2
                    kernel: vmlinuz
                    initrd: initrd.img
                    workload: dirtier -m 64
                    network: {segment: lan, address: 10.77.0.1/24}
                  - name: vm2
                    memory: 256
                    kernel: vmlinuz
                    network: {segment: lan, address: 10.77.0.2/24}
                """, "demo.yaml", dir);
        assertThat(vc.name()).isEqualTo("demo");
        assertThat(vc.accelerator()).isEqualTo(Accelerator.AUTO);
        VmSpec vm1 = vc.vm("vm1").orElseThrow();
        assertThat(vm1.memoryMiB()).isEqualTo(1024);
        assertThat(vm1.cpus()).isEqualTo(2);
        assertThat(vm1.kernel()).isEqualTo(dir.resolve("vmlinuz"));
        assertThat(vm1.workload()).isEqualTo("dirtier -m 64");
        VmSpec vm2 = vc.vm("vm2").orElseThrow();
        assertThat(vm2.memoryMiB()).isEqualTo(256);
        assertThat(vm2.network().hubPort()).isEqualTo(vm1.network().hubPort());
        assertThat(vm2.network().mac()).isNotEqualTo(vm1.network().mac());
    }

    @Test
    void aMissingKernelFileIsNamedWithItsPath() throws Exception {
        assertThatThrownBy(() -> VirtualClusterFile.parse("""
                name: demo
                vms:
                  - name: vm1
                    memory: 256Mi
                    kernel: /nonexistent/vmlinuz
                """, "demo.yaml", dir))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("demo.yaml")
                .hasMessageContaining("vms[0] (vm1).kernel")
                .hasMessageContaining("/nonexistent/vmlinuz does not exist");
    }

    @Test
    void anImpossibleMemorySizeIsRefusedWithTheHostsSize() throws Exception {
        kernel();
        assertThatThrownBy(() -> VirtualClusterFile.parse("""
                name: demo
                vms:
                  - {name: vm1, memory: 64Ti, kernel: vmlinuz}
                """, "demo.yaml", dir))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("vms[0] (vm1).memory")
                .hasMessageContaining("more than this host's");
        assertThatThrownBy(() -> VirtualClusterFile.parse("""
                name: demo
                vms:
                  - {name: vm1, memory: lots, kernel: vmlinuz}
                """, "demo.yaml", dir))
                .hasMessageContaining("'lots' is not a memory size; write e.g. 256Mi");
        assertThatThrownBy(() -> VirtualClusterFile.parse("""
                name: demo
                vms:
                  - {name: vm1, memory: 8Mi, kernel: vmlinuz}
                """, "demo.yaml", dir))
                .hasMessageContaining("below the 64 MiB");
    }

    @Test
    void duplicateVmNamesAreRefused() throws Exception {
        kernel();
        assertThatThrownBy(() -> VirtualClusterFile.parse("""
                name: demo
                vms:
                  - {name: vm1, memory: 256Mi, kernel: vmlinuz}
                  - {name: vm1, memory: 256Mi, kernel: vmlinuz}
                """, "demo.yaml", dir))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("vms[1]: duplicate VM name 'vm1' (also vms[0])");
    }

    @Test
    void unknownFieldsAreNamedWithTheKnownOnes() {
        assertThatThrownBy(() -> VirtualClusterFile.parse("""
                name: demo
                vms:
                  - {name: vm1, memory: 256Mi, memroy: 1Gi}
                """, "demo.yaml", dir))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining("unknown field 'memroy'")
                .hasMessageContaining("vms[0]")
                .hasMessageContaining("memory");
    }

    @Test
    void everyProblemIsListedAtOnce() throws Exception {
        assertThatThrownBy(() -> VirtualClusterFile.parse("""
                name: Demo_VC
                accelerator: warp
                vms:
                  - {name: vm1, cpus: 0, kernel: missing}
                """, "demo.yaml", dir))
                .hasMessageContaining("problems")
                .hasMessageContaining("name: 'Demo_VC'")
                .hasMessageContaining("unknown accelerator 'warp'")
                .hasMessageContaining(".memory: missing")
                .hasMessageContaining(".cpus: 0");
    }

    @Test
    void memorySizesParseLikeQemu() {
        assertThat(MemorySize.parseMiB("512")).isEqualTo(512);
        assertThat(MemorySize.parseMiB("512M")).isEqualTo(512);
        assertThat(MemorySize.parseMiB("2Gi")).isEqualTo(2048);
        assertThat(MemorySize.parseMiB("1GiB")).isEqualTo(1024);
    }
}
