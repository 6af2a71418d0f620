package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.kubevirt.LauncherCapture;
import io.mekha.agent.kubevirt.LauncherIncoming;
import io.mekha.agent.kubevirt.LauncherNotFoundException;
import io.mekha.agent.kubevirt.LauncherQemu;
import io.mekha.agent.kubevirt.LauncherQemus;
import io.mekha.agent.kubevirt.ShortSocketPath;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.runtime.QemuVm;
import io.mekha.agent.runtime.RuntimeConfig;
import io.mekha.local.DirtierLog;
import io.mekha.testing.TestVms;
import io.mekha.qmp.QmpClient;
import io.mekha.testing.NoQemuLeftBehind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
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
        // the mount point the restore test made on the host's /run, if it is still empty
        try {
            Files.deleteIfExists(Path.of("/run/kubevirt-private"));
        } catch (java.nio.file.DirectoryNotEmptyException | java.nio.file.AccessDeniedException kept) {
            // something else keeps it
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

        try (QmpClient qmp = QmpClient.connect(ShortSocketPath.of(qemu.monitor(), work.resolve("s"), "vm1"), Duration.ofSeconds(20))) {
            assertThat(qmp.execute("query-name").path("name").asText()).isEqualTo("hpc_vm1");
            assertThat(qmp.execute("query-status").path("status").asText()).isEqualTo("running");
        }

        assertThatThrownBy(() -> finder.find("hpc", "vm2")).isInstanceOf(LauncherNotFoundException.class)
                .hasMessageContaining("no QEMU of VMI hpc/vm2 runs on this node").hasMessageContaining("[hpc_vm1, hpc_vm3]");
        assertThatThrownBy(() -> finder.find("hpc", "vm3")).isInstanceOf(LauncherNotFoundException.class)
                .hasMessageContaining("has no Mekha monitor").hasMessageContaining("hook sidecar");
    }

    @Test
    void aSocketPathBeyondTheUnixLimitIsReachedThroughAShortLink() throws Exception {
        Path deep = work;
        while (deep.toString().length() < 90) {
            deep = deep.resolve("kubelet-pods-dir");
        }
        Node node = node(Files.createDirectories(deep));
        node.launch("hpc", "vm1");
        LauncherQemu qemu = new LauncherQemus(node.proc).find("hpc", "vm1");
        assertThat(qemu.monitor().toString().length()).isGreaterThan(107);
        Path reachable = ShortSocketPath.of(qemu.monitor(), work.resolve("s"), "vm1");
        assertThat(reachable.toString().length()).isLessThanOrEqualTo(107);
        try (QmpClient qmp = QmpClient.connect(reachable, Duration.ofSeconds(20))) {
            assertThat(qmp.execute("query-status").path("status").asText()).isEqualTo("running");
        }
    }

    /**
     * Checkpoint and restore on a real process table, with QEMUs started as virt-launcher starts
     * them: each in a mount namespace of its own where /var/run/kubevirt-private is its pod's
     * emptyDir, with the hook's arguments. The agent finds the first through /proc, stops it, takes
     * its state out through a socket it binds inside the pod, and resumes it; the second (a VMI being
     * restored, so started with -incoming defer) is fed that state and resumed: the guest's work
     * goes on from the cut round for round as the first one's did.
     */
    @Test
    void aVmisStateLeavesItsPodAndARestoredVmiContinuesFromItExactly() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "a mount namespace with the pod's emptyDir bound needs root");
        List<String> machine;
        try (LocalVmRuntime runtime = new LocalVmRuntime(RuntimeConfig.defaults(Files.createDirectories(work.resolve("local"))))) {
            QemuVm template = runtime.start(TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 200"));
            Path instance = template.paths().dir();
            machine = template.commandLine().stream().map(a -> a.replace("guest=vm1,", "guest=hpc_vm1,")
                    .replace(instance.toString(), "@POD@")).toList();
            template.kill();
        }
        LauncherQemus node = new LauncherQemus(Path.of("/proc"));
        Path state = work.resolve("vm1.vmstate");

        Launcher first = launch("first", machine, "");
        LauncherQemu running = awaitLauncher(node, first);
        long cutRound;
        try (QmpClient qmp = QmpClient.connect(ShortSocketPath.of(running.monitor(), work.resolve("s"), "first"), Duration.ofSeconds(20))) {
            awaitRound(first.console(), 5);
            qmp.execute("stop");
            long saved;
            try (var out = Files.newOutputStream(state)) {
                saved = LauncherCapture.save(running, qmp, out, Duration.ofSeconds(60), work.resolve("s"));
            }
            assertThat(saved).isEqualTo(Files.size(state)).isPositive();
            assertThat(first.podPrivate().resolve("mekha-outgoing.sock")).as("the capture socket is gone").doesNotExist();
            cutRound = DirtierLog.lastRoundReached(Files.readString(first.console()));
            qmp.execute("cont");
        }
        awaitRound(first.console(), cutRound + 6);
        first.process().destroyForcibly();
        first.process().waitFor();
        TreeMap<Long, String> source = DirtierLog.parse(Files.readAllLines(first.console()));

        Launcher second = launch("second", machine, "\"mekha.io/restore-from\": \"hpc.cp1.0a1b2c3d\"");
        LauncherQemu restored = awaitLauncher(node, second);
        assertThat(restored.pid()).isEqualTo(second.process().pid());
        assertThat(restored.monitor()).isEqualTo(Path.of("/proc/" + second.process().pid() + "/root/run/kubevirt-private/mekha-qmp.sock"));
        try (QmpClient qmp = QmpClient.connect(ShortSocketPath.of(restored.monitor(), work.resolve("s"), "second"), Duration.ofSeconds(20))) {
            assertThat(qmp.execute("query-status").path("status").asText()).isEqualTo("inmigrate");
            long fed = LauncherIncoming.feed(restored, qmp, Files.newInputStream(state), Duration.ofSeconds(60), work.resolve("s"));
            assertThat(fed).isEqualTo(Files.size(state));
            assertThat(qmp.execute("query-status").path("status").asText()).as("loaded, paused at the cut").isIn("paused", "postmigrate");
            qmp.execute("cont");
        }
        awaitRound(second.console(), source.lastKey() + 3);
        TreeMap<Long, String> after = DirtierLog.parse(Files.readAllLines(second.console()));
        assertThat(after.firstKey()).as("the restored VM goes on from the cut").isLessThanOrEqualTo(cutRound + 1);
        TreeMap<Long, String[]> both = DirtierLog.overlap(source, after);
        assertThat(both).hasSizeGreaterThanOrEqualTo(3);
        both.forEach((round, hashes) -> assertThat(hashes[1]).as("hash of round %d after the restore", round).isEqualTo(hashes[0]));
    }

    /** A QEMU started as virt-launcher starts one, and its pod's emptyDir. */
    record Launcher(Process process, Path podPrivate, Path console) {}

    private Launcher launch(String pod, List<String> machine, String annotations) throws Exception {
        Path dir = Files.createDirectories(work.resolve(pod));
        Path podPrivate = Files.createDirectories(work.resolve("pods/" + pod + "/volumes/kubernetes.io~empty-dir/private"));
        DomainHookTest.Run hooked = DomainHookTest.hook(DomainHookTest.vmi(annotations), DomainHookTest.sample());
        List<String> command = new ArrayList<>(List.of("unshare", "--mount", "--propagation", "private", "sh", "-c",
                "mkdir -p /var/run/kubevirt-private && mount --bind \"$0\" /var/run/kubevirt-private && exec \"$@\"", podPrivate.toString()));
        machine.forEach(a -> command.add(a.replace("@POD@", dir.toString())));
        command.addAll(DomainHookTest.qemuArgs(DomainHookTest.parse(hooked.out())));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("qemu.log").toFile()).start();
        qemus.add(process);
        return new Launcher(process, podPrivate, dir.resolve(vmConsoleName(machine)));
    }

    private static String vmConsoleName(List<String> machine) {
        String serial = machine.stream().filter(a -> a.startsWith("file,id=serial0,path=")).findFirst().orElseThrow();
        return Path.of(serial.substring("file,id=serial0,path=".length())).getFileName().toString();
    }

    private static LauncherQemu awaitLauncher(LauncherQemus node, Launcher launcher) throws Exception {
        Process process = launcher.process();
        Path log = launcher.console().getParent().resolve("qemu.log");
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            try {
                return node.find("hpc", "vm1");
            } catch (LauncherNotFoundException e) {
                if (System.nanoTime() > deadline || !process.isAlive()) {
                    throw new AssertionError("the launcher QEMU did not come up: " + e.getMessage() + "; it said: " + Files.readString(log));
                }
                Thread.sleep(50);
            }
        }
    }

    private static void awaitRound(Path console, long round) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (!Files.exists(console) || DirtierLog.lastRound(Files.readAllLines(console)) < round) {
            assertThat(System.nanoTime()).as("round %d in %s", round, console).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    @Test
    void aSocketBoundPastTheUnixLimitLandsInItsOwnDirectoryThroughALinkedDirectory() throws Exception {
        Path deep = work;
        while (deep.toString().length() < 110) {
            deep = deep.resolve("pod-directory");
        }
        Path socket = Files.createDirectories(deep).resolve("mekha-outgoing.sock");
        try (var server = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(ShortSocketPath.forBind(socket, work.resolve("s"), "vm1")));
            assertThat(socket).as("the socket is in the deep directory, not in the link directory").exists();
            try (var client = java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(
                    ShortSocketPath.of(socket, work.resolve("s"), "vm1")))) {
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
