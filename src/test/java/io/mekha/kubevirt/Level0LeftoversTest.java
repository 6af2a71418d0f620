package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.kubevirt.KubeVirtVmRuntime;
import io.mekha.agent.qemu.RuntimeConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An agent container restarted in its pod finds the pod's memory-backed level-0 volume as the last one left it: streams
 * of its own VMs and copies it held for partner nodes, which no session of the new agent can use. It frees them.
 */
@Tag("fast")
class Level0LeftoversTest {
    @TempDir
    Path work;

    @Test
    void anAgentThatStartsFreesTheLevel0FilesAnEarlierAgentOfItsPodLeft() throws Exception {
        Path level0 = Files.createDirectories(work.resolve("level0"));
        Files.write(level0.resolve("hpc_vm1-1.stream"), new byte[1 << 20]);
        Files.write(Files.createDirectories(level0.resolve("partners").resolve("hpc.cp1.0a1b2c3d")).resolve("hpc_vm2.stream"), new byte[4096]);
        try (AgentService agent = new AgentService("n1", new KubeVirtVmRuntime(RuntimeConfig.defaults(Files.createDirectories(work.resolve("agent"))),
                Path.of("/proc"), level0), new RendezvousClock(Clock.systemUTC()))) {
            assertThat(Files.isDirectory(level0)).as("the volume's mount point stays").isTrue();
            try (Stream<Path> left = Files.list(level0)) {
                assertThat(left.toList()).isEmpty();
            }
            assertThat(agent.level0Usage().bytes()).isZero();
        }
    }
}
