package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.model.PodIdentity;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * Launcher pods with real libvirt in charge of QEMU, as KubeVirt's non-root virt-launcher runs it: each pod is a mount
 * namespace and a cgroup of its own ({@link LauncherPods} builds them the same way) whose init
 * ({@code launcher-init.py}, virt-launcher-monitor's part: it reaps the QEMU libvirt daemonizes) starts virtlogd and a
 * libvirt daemon in session mode as the launcher's user (uid 107, {@code qemu} in the pod's own /etc/passwd), with
 * virt-launcher's environment ({@code XDG_RUNTIME_DIR=/var/run}, {@code XDG_CONFIG_HOME=XDG_CACHE_HOME=/var/run/kubevirt-private})
 * and virt-launcher's qemu.conf. A VMI is started the way virt-launcher starts it: its domain XML (as KubeVirt's
 * converter generates it, {@code libvirt-domain.xml}) goes through the real {@code qemu-hooks/onDefineDomain}, then
 * {@code virsh define} and {@code virsh start} over the pod's libvirt socket.
 *
 * <p>Debian packages only the monolithic {@code libvirtd} (virt-launcher runs {@code virtqemud}): the same QEMU driver,
 * in one daemon. Needs root (namespaces, cgroups, uid switching).
 */
public final class LibvirtPods implements AutoCloseable {
    /** The launcher's user: KubeVirt's non-root virt-launcher runs libvirt and QEMU as uid 107. */
    public static final int LAUNCHER_UID = 107;
    /** The virtual size of the tests' containerDisk image, and so of every pod's overlay over it. */
    static final String CONTAINER_DISK_SIZE = "16M";

    private final Path work;
    private final List<Pod> pods = new CopyOnWriteArrayList<>();
    private final List<Path> cgroups = new CopyOnWriteArrayList<>();
    private final List<AgentClient> agents = new CopyOnWriteArrayList<>();
    private final Map<String, PodIdentity> named = new ConcurrentHashMap<>();

    /** A launcher pod: its directory on the node, its init, libvirt's socket, its cgroup identity. */
    public record Pod(String name, Path dir, Process init, PodIdentity identity) {
        /** libvirt's URI for this pod, as virt-launcher's own connection ({@code qemu:///session} over the pod's socket). */
        public String uri() {
            return "qemu+unix:///session?socket=" + dir.resolve("run-libvirt/libvirt-sock");
        }

        /** The pod's {@code /var/run/kubevirt-private} emptyDir, as the node sees it. */
        public Path podPrivate() {
            return dir.resolve("private");
        }

        /** libvirt's own log (warnings, errors, and its QEMU event handling in full). */
        public Path daemonLog() {
            return dir.resolve("libvirtd.log");
        }
    }

    /** A VMI started by libvirt in a pod: the domain's name, its QEMU, and where its serial console is logged. */
    public record Vmi(Pod pod, String domain, String uid, ProcessHandle qemu, Path console) {
        public long pid() {
            return qemu.pid();
        }
    }

    /** What a virsh call said. */
    public record Virsh(int exit, String out) {
        public boolean ok() {
            return exit == 0;
        }
    }

    public LibvirtPods(Path work) {
        this.work = work;
    }

    /** Names every pod that runs a VMI (started and to come) to {@code agent}, as the operator does before it acts. */
    public void nameTo(AgentClient agent) throws Exception {
        agents.add(agent);
        if (!named.isEmpty()) {
            agent.expectPods(Map.copyOf(named));
        }
    }

    /** Starts pod {@code name}: its directories, its init, virtlogd and the libvirt daemon; returns once libvirt answers. */
    public Pod start(String name) throws Exception {
        byte[] id = new byte[32];
        new java.security.SecureRandom().nextBytes(id);
        PodIdentity identity = new PodIdentity(UUID.randomUUID().toString(), java.util.HexFormat.of().formatHex(id));
        Path cgroup = Files.createDirectories(LauncherPods.cgroup2().resolve("mekha-test-" + ProcessHandle.current().pid())
                .resolve("kubepods").resolve("pod" + identity.podUid()).resolve(identity.containerId()));
        cgroups.add(cgroup);
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x")); // the pod's user walks to its pod
        Path dir = Files.createDirectories(work.resolve("libvirt-pods/" + name));
        Files.setPosixFilePermissions(dir.getParent(), PosixFilePermissions.fromString("rwxr-xr-x"));
        Path privateDir = Files.createDirectories(dir.resolve("private/libvirt"));
        Files.createDirectories(dir.resolve("ephemeral-disks"));
        Path runLibvirt = Files.createDirectories(dir.resolve("run-libvirt"));
        Files.createDirectories(dir.resolve("container-disks/kernel-boot"));
        // virt-launcher's own configuration (cmd/virt-launcher/qemu.conf, virtqemud.conf), copied where it copies them for
        // a non-root launcher; libvirt logs at warning level, and its handling of QEMU's events in full
        Files.writeString(privateDir.resolve("qemu.conf"), """
                stdio_handler = "logd"
                vnc_listen = "0.0.0.0"
                vnc_tls = 0
                vnc_sasl = 0
                user = "qemu"
                group = "qemu"
                dynamic_ownership = 1
                remember_owner = 0
                namespaces = [ ]
                cgroup_controllers = [ ]
                """);
        Files.writeString(runLibvirt.resolve("virtqemud.conf"), """
                listen_tls = 0
                listen_tcp = 0
                host_uuid = "%s"
                log_level = 3
                log_filters = "1:qemu.qemu_process 1:qemu.qemu_migration"
                log_outputs = "1:stderr"
                """.formatted(UUID.randomUUID())); // each pod its own host UUID, as each node has: libvirt refuses to migrate to itself
        // the launcher image's passwd and group know uid 107 as qemu; this machine's do not
        Files.writeString(dir.resolve("passwd"), Files.readString(Path.of("/etc/passwd"))
                + "qemu:x:" + LAUNCHER_UID + ":" + LAUNCHER_UID + ":qemu user:/var/run/kubevirt-private:/sbin/nologin\n");
        Files.writeString(dir.resolve("group"), Files.readString(Path.of("/etc/group")) + "qemu:x:" + LAUNCHER_UID + ":\n");
        Path init = dir.resolve("launcher-init.py");
        try (var in = LibvirtPods.class.getResourceAsStream("/kubevirt/launcher-init.py")) {
            Files.write(init, in.readAllBytes());
        }
        chown(dir);
        List<String> command = List.of("unshare", "--mount", "--propagation", "private", "sh", "-c",
                "echo $$ > \"$1/cgroup.procs\" && P=\"$0\""
                        + " && mkdir -p /var/run/kubevirt-private /var/run/kubevirt-ephemeral-disks /var/run/libvirt /var/run/kubevirt/container-disks"
                        + " && mount --bind \"$P/private\" /var/run/kubevirt-private"
                        + " && mount --bind \"$P/ephemeral-disks\" /var/run/kubevirt-ephemeral-disks"
                        + " && mount --bind \"$P/run-libvirt\" /var/run/libvirt"
                        + " && mount --bind \"$P/container-disks\" /var/run/kubevirt/container-disks"
                        + " && mount --bind \"$P/passwd\" /etc/passwd && mount --bind \"$P/group\" /etc/group"
                        + " && export XDG_CACHE_HOME=/var/run/kubevirt-private XDG_CONFIG_HOME=/var/run/kubevirt-private"
                        + " XDG_RUNTIME_DIR=/var/run HOME=/var/run/kubevirt-private"
                        + " && exec setpriv --reuid=" + LAUNCHER_UID + " --regid=" + LAUNCHER_UID + " " + groups() + " --inh-caps=-all"
                        + " /usr/bin/python3 \"$P/launcher-init.py\" /usr/sbin/libvirtd -f /var/run/libvirt/virtqemud.conf",
                dir.toString(), cgroup.toString());
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("libvirtd.log").toFile()).start();
        Pod pod = new Pod(name, dir, process, identity);
        pods.add(pod);
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!virsh(pod, "version").ok()) {
            assertThat(process.isAlive()).as("pod %s's libvirt daemon runs: %s", name, Files.readString(pod.daemonLog())).isTrue();
            assertThat(System.nanoTime()).as("pod %s's libvirt daemon answers", name).isLessThan(deadline);
            Thread.sleep(100);
        }
        return pod;
    }

    /**
     * Starts VMI {@code namespace/spec.name} in a new pod {@code podName} as virt-launcher does: a containerDisk overlay over
     * {@code base} (a fresh one, as every new pod gets), the guest's kernel and initrd, the converter's domain XML through
     * the hook with {@code annotations} (JSON members) on the VMI, then {@code virsh define} and {@code virsh start}.
     */
    public Vmi launch(String podName, String namespace, VmSpec spec, String annotations, Path base) throws Exception {
        Pod pod = start(podName);
        return launchIn(pod, namespace, spec, annotations, base);
    }

    /** As {@link #launch}, in a pod already started. */
    public Vmi launchIn(Pod pod, String namespace, VmSpec spec, String annotations, Path base) throws Exception {
        String uid = UUID.randomUUID().toString(); // a new VMI object: a new UID
        prepare(pod, spec, base, uid);
        String domain = namespace + "_" + spec.name();
        Integer nicPort = spec.network() == null ? null : io.mekha.agent.network.SegmentPort.freeUdpPort();
        String xml = domainXml(domain, uid, spec, nicPort);
        DomainHookTest.Run hooked = DomainHookTest.hook(vmiJson(namespace, spec.name(), uid, annotations), xml);
        assertThat(hooked.exit()).as("the hook ran: %s", hooked.err()).isZero();
        Path file = Files.writeString(pod.dir().resolve(domain + ".xml"), hooked.out());
        require(pod, "define", file.toString());
        require(pod, "start", domain);
        if (nicPort != null) {
            // the NIC's port takes the MAC's place on the segment (the restored VMI's replaces the crashed one's)
            io.mekha.agent.network.SegmentPort.attach(spec.network().hubPort(), spec.network().mac(), nicPort);
        }
        name(pod, domain);
        return new Vmi(pod, domain, uid, qemuOf(pod, domain), pod.podPrivate().resolve(uid + "/virt-serial0-log"));
    }

    /**
     * A pod made ready as KubeVirt makes a live migration's target pod for {@code vmi}: the same VMI (its UID), the guest's
     * kernel, its own containerDisk and a fresh overlay over it, the VMI's socket directory; libvirt brings the domain.
     */
    public Pod migrationTarget(String podName, Vmi vmi, VmSpec spec, Path base) throws Exception {
        Pod pod = start(podName);
        prepare(pod, spec, base, vmi.uid());
        return pod;
    }

    /** The VMI {@code vmi} once libvirt migrated it into {@code target}; the pod is named to the agents, as the operator does. */
    public Vmi migrated(Vmi vmi, Pod target) throws Exception {
        name(target, vmi.domain());
        return new Vmi(target, vmi.domain(), vmi.uid(), qemuOf(target, vmi.domain()), target.podPrivate().resolve(vmi.uid() + "/virt-serial0-log"));
    }

    private void prepare(Pod pod, VmSpec spec, Path base, String uid) throws Exception {
        Path dir = pod.dir();
        Files.copy(spec.kernel(), dir.resolve("container-disks/kernel-boot/vmlinuz"));
        Files.copy(spec.initrd(), dir.resolve("container-disks/kernel-boot/initrd.img"));
        Files.copy(base, dir.resolve("container-disks/disk_0.img"));
        Path overlay = Files.createDirectories(dir.resolve("ephemeral-disks/disk-data/rootdisk")).resolve("disk.qcow2");
        Process img = new ProcessBuilder(RuntimeConfig.defaults(work).qemuImg(), "create", "-q", "-f", "qcow2", "-b",
                "/var/run/kubevirt/container-disks/disk_0.img", "-F", "qcow2", "-u", overlay.toString(), CONTAINER_DISK_SIZE)
                .redirectErrorStream(true).start();
        assertThat(img.waitFor()).as(new String(img.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
        Files.createDirectories(pod.podPrivate().resolve(uid)); // virt-launcher makes the VMI's socket directory
        chown(dir);
    }

    private void name(Pod pod, String domain) throws Exception {
        Map<String, PodIdentity> vmi = Map.of(domain, pod.identity());
        named.putAll(vmi);
        for (AgentClient agent : agents) {
            agent.expectPods(vmi);
        }
    }

    /** A containerDisk image (an empty qcow2 of {@link #CONTAINER_DISK_SIZE}) at {@code path}. */
    static Path containerDisk(Path path) throws Exception {
        Process img = new ProcessBuilder(RuntimeConfig.defaults(path.getParent()).qemuImg(), "create", "-q", "-f", "qcow2", path.toString(),
                CONTAINER_DISK_SIZE).redirectErrorStream(true).start();
        assertThat(img.waitFor()).as(new String(img.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
        return path;
    }

    /**
     * The converter-shaped domain of a VMI running {@code spec}'s guest; on the VC's network (when {@code spec} has one)
     * through a UDP interface at {@code nicPort} to its segment hub.
     */
    static String domainXml(String domain, String uid, VmSpec spec, Integer nicPort) throws IOException {
        String nic = "";
        if (spec.network() != null) {
            nic = """

                    <interface type="udp">
                      <mac address="%s"></mac>
                      <source address="127.0.0.1" port="%d">
                        <local address="127.0.0.1" port="%d"></local>
                      </source>
                      <model type="virtio-non-transitional"></model>
                      <alias name="ua-default"></alias>
                      <rom enabled="no"></rom>
                    </interface>""".formatted(spec.network().mac(), spec.network().hubPort(), nicPort).replace("\n", "\n    ");
        }
        try (var in = LibvirtPods.class.getResourceAsStream("/kubevirt/libvirt-domain.xml")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).replace("@NAME@", domain).replace("@UUID@", uid)
                    .replace("@MEMORY@", Long.toString(spec.memoryMiB() << 20)).replace("@CMDLINE@", QemuCommandLine.kernelArguments(spec))
                    .replace("@NIC@", nic);
        }
    }

    static String vmiJson(String namespace, String name, String uid, String annotations) {
        return "{\"apiVersion\": \"kubevirt.io/v1\", \"kind\": \"VirtualMachineInstance\", \"metadata\": {\"name\": \"" + name
                + "\", \"namespace\": \"" + namespace + "\", \"uid\": \"" + uid + "\", \"annotations\": {" + annotations + "}},"
                + " \"spec\": {\"domain\": {}}}";
    }

    /** The QEMU libvirt started for {@code domain}: the pid libvirt wrote down for it. */
    static ProcessHandle qemuOf(Pod pod, String domain) throws Exception {
        Path pidFile = pod.dir().resolve("run-libvirt/qemu/run/" + domain + ".pid");
        long pid = Long.parseLong(Files.readString(pidFile).trim());
        return ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("libvirt's QEMU " + pid + " for " + domain + " is gone"));
    }

    /** {@code virsh -c <the pod's libvirt> args...}. */
    public static Virsh virsh(Pod pod, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of("virsh", "-q", "-c", pod.uri()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("virsh %s returned", List.of(args)).isTrue();
        return new Virsh(p.exitValue(), out.trim());
    }

    /** As {@link #virsh}, failing the test unless virsh succeeds; its output. */
    public static String require(Pod pod, String... args) throws Exception {
        Virsh v = virsh(pod, args);
        assertThat(v.exit()).as("virsh %s in pod %s: %s", List.of(args), pod.name(), v.out()).isZero();
        return v.out();
    }

    /** libvirt's {@code domstate --reason}, e.g. {@code running (booted)} or {@code paused (unknown)}. */
    public static String domstate(Vmi vmi) throws Exception {
        return require(vmi.pod(), "domstate", "--reason", vmi.domain());
    }

    /** The pod dies as with its node: every process in its cgroup killed at once, unannounced. */
    public void crash(Pod pod) throws Exception {
        Path cgroup = cgroups.stream().filter(c -> c.getFileName().toString().equals(pod.identity().containerId())).findFirst().orElseThrow();
        Files.writeString(cgroup.resolve("cgroup.kill"), "1");
        assertThat(pod.init().waitFor(30, TimeUnit.SECONDS)).as("pod %s is gone", pod.name()).isTrue();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!Files.readString(cgroup.resolve("cgroup.procs")).isBlank()) {
            assertThat(System.nanoTime()).as("pod %s's processes are gone", pod.name()).isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    /**
     * The launcher's supplementary groups: {@code kvm} where this machine has it, as KubeVirt's device plugin hands the pod
     * /dev/kvm (libvirt then accepts the converter's {@code type="kvm"} domains; the tests start {@code type="qemu"} ones,
     * since nested KVM hangs here).
     */
    private static String groups() throws IOException {
        for (String line : Files.readAllLines(Path.of("/etc/group"))) {
            String[] f = line.split(":");
            if (f.length > 2 && f[0].equals("kvm")) {
                return "--groups=" + f[2];
            }
        }
        return "--clear-groups";
    }

    private static void chown(Path dir) throws IOException {
        try (var tree = Files.walk(dir)) {
            for (Path p : tree.toList()) {
                Files.setAttribute(p, "unix:uid", LAUNCHER_UID, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                Files.setAttribute(p, "unix:gid", LAUNCHER_UID, java.nio.file.LinkOption.NOFOLLOW_LINKS);
            }
        }
    }

    @Override
    public void close() throws Exception {
        for (Pod pod : pods) {
            if (pod.init().isAlive()) {
                crash(pod);
            }
        }
        for (Path cgroup : cgroups) {
            for (Path dir = cgroup; dir != null && dir.getFileName().toString().matches("mekha-test-.*|kubepods|pod.*|[0-9a-f]{64}");
                 dir = dir.getParent()) {
                try {
                    Files.deleteIfExists(dir);
                } catch (IOException busy) {
                    break;
                }
            }
        }
        for (String dir : List.of("/run/kubevirt-private", "/run/kubevirt-ephemeral-disks", "/run/kubevirt/container-disks", "/run/kubevirt")) {
            try {
                Files.deleteIfExists(Path.of(dir));
            } catch (IOException kept) {
                // not ours, or in use
            }
        }
    }
}
