package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.kubevirt.LauncherNotFoundException;
import io.mekha.agent.kubevirt.LauncherQemu;
import io.mekha.agent.kubevirt.LauncherQemus;
import io.mekha.agent.kubevirt.PodRoot;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.qmp.QmpClient;
import io.mekha.testing.NoQemuLeftBehind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent finds a KubeVirt VM's QEMU and Mekha's monitor on a node laid out as kubelet and
 * virt-launcher lay it out: a pod's emptyDir under {@code pods/<uid>/volumes/kubernetes.io~empty-dir/private},
 * mounted in the pod at {@code /var/run/kubevirt-private}; a /proc-like tree whose {@code <pid>/root}
 * leads into the pod's filesystem; and behind the socket a real QEMU started with the arguments
 * the hook (qemu-hooks/onDefineDomain) gives it.
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class LauncherQemusTest {
    static final String POD_UID = "8f0c7a52-3a1e-4c55-9d0e-2b6f4f1e9a77";

    @TempDir
    Path work;
    final List<Process> qemus = new ArrayList<>();
    final List<Path> links = new ArrayList<>();

    @AfterEach
    void stopQemus() throws Exception {
        for (Process p : qemus) {
            p.destroyForcibly();
            p.waitFor();
        }
        for (Path dir : links) {
            Files.deleteIfExists(dir.resolve("p"));
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void theMonitorTheHookAddedIsFoundThroughTheProcessRootAndAnswers() throws Exception {
        Node node = node(work);
        long pid = node.launch("hpc", "vm1");
        node.decoys();

        LauncherQemus finder = new LauncherQemus(node.proc);
        assertThat(finder.all()).extracting(LauncherQemu::domain).containsExactly("hpc_vm1", "hpc_vm3");
        LauncherQemu qemu = finder.find("hpc", "vm1");
        assertThat(qemu.pid()).isEqualTo(pid);
        assertThat(qemu.monitor()).as("the pod's /var/run -> /run followed inside the pod")
                .isEqualTo(node.proc.resolve(pid + "/root/run/kubevirt-private/mekha-qmp.sock"));
        assertThat(qemu.commandLine()).contains("-mon", "chardev=mekha-qmp,mode=control");

        try (PodRoot root = PodRoot.ofProcess(qemu.processDir()); PodRoot.Opened monitor = root.open(LauncherQemus.MONITOR_IN_POD);
             QmpClient qmp = QmpClient.connect(monitor.path(), Duration.ofSeconds(20))) {
            assertThat(qmp.execute("query-name").path("name").asText()).isEqualTo("hpc_vm1");
            assertThat(qmp.execute("query-status").path("status").asText()).isEqualTo("running");
        }

        assertThatThrownBy(() -> finder.find("hpc", "vm2")).isInstanceOf(LauncherNotFoundException.class)
                .hasMessageContaining("no QEMU of VMI hpc/vm2 runs on this node").hasMessageContaining("[hpc_vm1, hpc_vm3]");
        assertThatThrownBy(() -> finder.find("hpc", "vm3")).isInstanceOf(LauncherNotFoundException.class)
                .hasMessageContaining("has no Mekha monitor").hasMessageContaining("hook sidecar");
    }

    @Test
    void aSocketPathBeyondTheUnixLimitIsReachedThroughItsDescriptor() throws Exception {
        Path deep = work;
        while (deep.toString().length() < 90) {
            deep = deep.resolve("kubelet-pods-dir");
        }
        Node node = node(Files.createDirectories(deep));
        node.launch("hpc", "vm1");
        LauncherQemu qemu = new LauncherQemus(node.proc).find("hpc", "vm1");
        assertThat(qemu.monitor().toString().length()).isGreaterThan(107);
        try (PodRoot root = PodRoot.ofProcess(qemu.processDir()); PodRoot.Opened monitor = root.open(LauncherQemus.MONITOR_IN_POD)) {
            assertThat(monitor.path().toString().length()).isLessThanOrEqualTo(107);
            try (QmpClient qmp = QmpClient.connect(monitor.path(), Duration.ofSeconds(20))) {
                assertThat(qmp.execute("query-status").path("status").asText()).isEqualTo("running");
            }
        }
    }

    @Test
    void aSocketBoundPastTheUnixLimitLandsInItsDirectoryThroughTheDirectorysDescriptor() throws Exception {
        Path deep = work;
        while (deep.toString().length() < 110) {
            deep = deep.resolve("pod-directory");
        }
        Path socket = Files.createDirectories(deep).resolve("mekha-outgoing.sock");
        try (PodRoot root = PodRoot.ofDirectory(work); PodRoot.Opened dir = root.openDirectory("/" + work.relativize(deep));
             var server = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(dir.child("mekha-outgoing.sock")));
            assertThat(socket).as("the socket is in the deep directory").exists();
            try (PodRoot.Opened bound = root.open("/" + work.relativize(socket));
                 var client = java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(bound.path()))) {
                assertThat(client.isConnected()).isTrue();
            }
        }
    }

    Node node(Path base) throws Exception {
        return new Node(base);
    }

    /**
     * A node's layout as the agent sees it: a /proc-like tree whose {@code <pid>/root} is the pod's
     * filesystem, where, as in Debian and CentOS images, {@code /var/run} is a link to {@code /run}
     * and {@code /run/kubevirt-private} is the pod's emptyDir.
     */
    final class Node {
        final Path proc;
        final Path podPrivate;
        final Path podRoot;

        Node(Path base) throws Exception {
            proc = Files.createDirectories(base.resolve("proc"));
            podRoot = Files.createDirectories(base.resolve("launcher-root"));
            podPrivate = Files.createDirectories(podRoot.resolve("run/kubevirt-private"));
            Files.createDirectories(podRoot.resolve("var"));
            Files.createSymbolicLink(podRoot.resolve("var/run"), Path.of("/run"));
        }

        /** Starts a real QEMU as virt-launcher would, with the hook's arguments; enters it in the /proc tree. */
        long launch(String namespace, String name) throws Exception {
            DomainHookTest.Run hooked = DomainHookTest.hook(DomainHookTest.vmi(""), DomainHookTest.sample());
            List<String> hookArgs = DomainHookTest.qemuArgs(DomainHookTest.parse(hooked.out()));
            List<String> command = new ArrayList<>(List.of(RuntimeConfig.defaults(work).qemuBinary(), "-name",
                    "guest=" + namespace + "_" + name + ",debug-threads=on", "-machine", "q35", "-accel", "tcg", "-m", "64",
                    "-nodefaults", "-display", "none"));
            // in the pod, /var/run/kubevirt-private is a short path to its emptyDir under kubelet's pod directory;
            // a short link plays that mount for a QEMU on the host
            Path mount = Files.createTempDirectory("mq");
            links.add(mount);
            Files.createSymbolicLink(mount.resolve("p"), podPrivate);
            hookArgs.forEach(a -> command.add(a.replace("/var/run/kubevirt-private/", mount.resolve("p") + "/")));
            Process qemu = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(work.resolve(name + ".log").toFile()).start();
            qemus.add(qemu);
            Path pidDir = Files.createDirectories(proc.resolve(Long.toString(qemu.pid())));
            Files.write(pidDir.resolve("cmdline"), (String.join("\0", command) + "\0").getBytes());
            Files.createSymbolicLink(pidDir.resolve("root"), podRoot);
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (!Files.exists(podPrivate.resolve("mekha-qmp.sock"))) {
                if (System.nanoTime() > deadline || !qemu.isAlive()) {
                    throw new AssertionError("QEMU did not open Mekha's monitor; ran " + command + "; it said: "
                            + Files.readString(work.resolve(name + ".log")));
                }
                Thread.sleep(50);
            }
            return qemu.pid();
        }

        /** What else a node's process table holds: init, a kernel thread, a QEMU nobody named, a launcher QEMU without Mekha's hook. */
        void decoys() throws Exception {
            Files.write(Files.createDirectories(proc.resolve("1")).resolve("cmdline"), "/sbin/init\0".getBytes());
            Files.write(Files.createDirectories(proc.resolve("2")).resolve("cmdline"), new byte[0]);
            Files.createDirectories(proc.resolve("self"));
            Files.write(Files.createDirectories(proc.resolve("300")).resolve("cmdline"),
                    "/usr/bin/qemu-system-x86_64\0-name\0scratch\0".getBytes());
            Path bare = Files.createDirectories(work.resolve("bare-root"));
            Path p400 = Files.createDirectories(proc.resolve("400"));
            Files.write(p400.resolve("cmdline"), "/usr/libexec/qemu-kvm\0-name\0guest=hpc_vm3,debug-threads=on\0".getBytes());
            Files.createSymbolicLink(p400.resolve("root"), bare);
        }
    }
}
