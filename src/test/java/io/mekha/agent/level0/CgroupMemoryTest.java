package io.mekha.agent.level0;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent's memory headroom under its cgroup, read from cgroup files laid out as the kernel does (v2, v1, hybrid). */
@Tag("fast")
class CgroupMemoryTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path fs;

    @Test
    void v2TheTightestOfTheCgroupAndItsAncestorsCountsAndInactiveFileCacheIsNotUsage() throws IOException {
        Files.writeString(fs.resolve("cgroup.controllers"), "cpu memory pids\n");
        Path pod = Files.createDirectories(fs.resolve("kubepods.slice/kubepods-pod1.slice"));
        Path container = Files.createDirectories(pod.resolve("cri-containerd-abc.scope"));
        write(pod, "memory.max", String.valueOf(1024 * MIB), "memory.current", String.valueOf(200 * MIB));
        write(container, "memory.max", "max", "memory.current", String.valueOf(300 * MIB));
        Files.writeString(pod.resolve("memory.stat"), "anon 100\ninactive_file " + (100 * MIB) + "\nactive_file 5\n");
        Path self = proc("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope\n");

        assertThat(CgroupMemory.headroomMiB(self, fs)).isEqualTo(1024 - (200 - 100));
    }

    @Test
    void v1TheMemoryControllersLimitAndAHugeLimitMeansNone() throws IOException {
        Path memory = Files.createDirectories(fs.resolve("memory/agents/a1"));
        write(memory, "memory.limit_in_bytes", String.valueOf(512 * MIB), "memory.usage_in_bytes", String.valueOf(64 * MIB));
        write(fs.resolve("memory"), "memory.limit_in_bytes", "9223372036854771712", "memory.usage_in_bytes", String.valueOf(4096 * MIB));
        Path self = proc("12:pids:/\n4:memory:/agents/a1\n1:name=systemd:/\n0::/\n");

        assertThat(CgroupMemory.headroomMiB(self, fs)).isEqualTo(512 - 64);
    }

    @Test
    void noLimitAnywhereOrNothingReadableMeansNoBound() throws IOException {
        Files.createDirectories(fs.resolve("unified"));
        write(fs.resolve("unified"), "memory.current", "1000");
        assertThat(CgroupMemory.headroomMiB(proc("0::/\n"), fs)).isEqualTo(Long.MAX_VALUE);
        assertThat(CgroupMemory.headroomMiB(fs.resolve("no-such-file"), fs)).isEqualTo(Long.MAX_VALUE);
        assertThat(CgroupMemory.headroomMiB(proc("0::/../../etc\n"), fs)).as("a path out of the cgroup root is ignored")
                .isEqualTo(Long.MAX_VALUE);
    }

    private Path proc(String text) throws IOException {
        return Files.writeString(Files.createDirectories(fs.resolve("proc-self")).resolve("cgroup"), text); // inside the temp dir
    }

    private static void write(Path dir, String... nameValue) throws IOException {
        for (int i = 0; i < nameValue.length; i += 2) {
            Files.writeString(dir.resolve(nameValue[i]), nameValue[i + 1] + "\n");
        }
    }
}
