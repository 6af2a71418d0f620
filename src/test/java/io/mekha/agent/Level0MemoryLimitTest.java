package io.mekha.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.server.BearerToken;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import io.mekha.testing.AgentProcess;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14, fault 11: level 0 lives inside the agent's memory limit (a shadow QEMU is its child; on KubeVirt a held
 * stream's tmpfs pages are charged to it), while the old check read only the host's MemAvailable: a checkpoint that
 * fit the host but not the limit had the agent OOM-killed with VMs paused. An agent process in a real memory cgroup
 * (v2, or v1 as on this machine) with a limit below what a shadow needs refuses the checkpoint before anything is
 * paused, says which limit, and the VM runs on untouched.
 */
@Tag("qemu")
@Tag("faults")
@ExtendWith(NoQemuLeftBehind.class)
class Level0MemoryLimitTest {
    @TempDir
    Path work;

    @Test
    void aCheckpointThatDoesNotFitTheAgentsCgroupLimitIsRefusedBeforeAnythingIsPaused() throws Exception {
        Path cgroups = Path.of("/sys/fs/cgroup");
        Path memoryRoot = Files.exists(cgroups.resolve("cgroup.controllers")) ? cgroups : cgroups.resolve("memory");
        assumeTrue(Files.isWritable(memoryRoot) && "root".equals(System.getProperty("user.name")), "needs root and a writable memory cgroup");
        boolean v2 = memoryRoot.equals(cgroups);
        BearerToken token = BearerToken.random();
        Path tokenFile = work.resolve("agent.token");
        token.write(tokenFile);
        Path cgroup = null;
        try (AgentProcess agent = AgentProcess.start("n1", Files.createDirectories(work.resolve("n1")), tokenFile)) {
            // a child of the agent's own memory cgroup (v1 nests limits; v2 needs a leaf, so there: a child of the root)
            Path home = memoryRoot;
            for (String line : Files.readAllLines(Path.of("/proc/" + agent.pid() + "/cgroup"))) {
                String[] parts = line.split(":", 3);
                if (!v2 && List.of(parts[1].split(",")).contains("memory")) {
                    home = memoryRoot.resolve(parts[2].substring(1));
                }
            }
            cgroup = home.resolve("mekha-test-" + agent.pid());
            AgentClient client = new AgentClient("n1", agent.uri(), token.header(), Duration.ofSeconds(30));
            client.startVm(TestVms.dirtier("vm1", 128, "-m 8 -d 2 -i 100"));

            // the agent moves into a cgroup whose limit leaves less than one shadow (128 + 192 MiB) needs
            Files.createDirectory(cgroup);
            Files.writeString(cgroup.resolve(v2 ? "memory.max" : "memory.limit_in_bytes"), String.valueOf(300L << 20));
            Files.writeString(cgroup.resolve("cgroup.procs"), String.valueOf(agent.pid()));
            try {
                assertThatThrownBy(() -> client.prepare("cp1", new PrepareRequest(List.of("vm1"), "MTD", null, null, Duration.ofSeconds(30),
                        Map.of(), null)))
                        .isInstanceOf(AgentCallException.class)
                        .hasMessageContaining("the agent's memory limit (its cgroup)")
                        .hasMessageContaining("nothing was paused");
                assertThat(client.vm("vm1").state()).isEqualTo("running");
                assertThat(client.vm("vm1").checkpoint()).as("the VM is not locked by the refused checkpoint").isNull();
            } finally {
                // back to where it came from, so that the cgroup can go
                Files.writeString(home.resolve("cgroup.procs"), String.valueOf(agent.pid()));
            }
        } finally {
            if (cgroup != null && Files.exists(cgroup)) {
                Files.delete(cgroup);
            }
        }
    }
}
