package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.local.DirtierLog;
import io.mekha.model.PodIdentity;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * QEMUs started as virt-launcher starts them, on this machine's real process table: each in a
 * mount namespace of its own where {@code /var/run/kubevirt-private} is its pod's emptyDir (a
 * directory under {@code pods/<pod>/volumes/kubernetes.io~empty-dir/private}), named by its
 * KubeVirt domain ({@code -name guest=<namespace>_<vmi>}), with the arguments Mekha's hook
 * (qemu-hooks/onDefineDomain) adds for the VMI's annotations, in a cgroup of its own named as the
 * kubelet names a pod's container ({@code .../pod<uid>/<container id>}, under this machine's cgroup2
 * hierarchy): its {@link Launcher#pod() identity}. Needs root (a mount namespace, cgroups).
 */
public final class LauncherPods implements AutoCloseable {
    private final Path work;
    private final List<Process> qemus = new ArrayList<>();
    private final List<Path> cgroups = new ArrayList<>();
    private final List<java.util.function.Consumer<Map<String, PodIdentity>>> agents = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final Map<String, PodIdentity> named = new java.util.concurrent.ConcurrentHashMap<>();

    /** A started launcher QEMU, its pod's emptyDir, the guest's console log, and its pod and container. */
    public record Launcher(Process process, Path podPrivate, Path console, PodIdentity pod) {}

    /**
     * Names every launcher's pod (started and to come) to {@code agent}, as the operator does before it acts: the
     * newest launcher of each VMI is that VMI. {@link #impostor} launches are never named.
     */
    public void nameTo(AgentClient agent) throws Exception {
        java.util.function.Consumer<Map<String, PodIdentity>> tell = pods -> {
            try {
                agent.expectPods(pods);
            } catch (io.mekha.protocol.AgentCallException e) {
                throw new IllegalStateException("the agent refused the launcher pods " + pods + ": " + e.getMessage(), e);
            }
        };
        agents.add(tell);
        if (!named.isEmpty()) {
            tell.accept(Map.copyOf(named));
        }
    }

    /** A QEMU that says it is VMI {@code namespace/spec.name} but runs in a pod of its own, never named to any agent. */
    public Launcher impostor(String pod, String namespace, VmSpec spec, String annotations) throws Exception {
        return launch(pod, namespace, spec, annotations, null, null, false, newIdentity(java.util.UUID.randomUUID().toString()));
    }

    /** The cgroup2 hierarchy of this machine (pure v2 at /sys/fs/cgroup, or the unified one of a hybrid setup). */
    static Path cgroup2() throws java.io.IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
            String[] f = line.split(" ");
            if (f.length > 2 && f[2].equals("cgroup2")) {
                return Path.of(f[1]);
            }
        }
        throw new IllegalStateException("no cgroup2 hierarchy is mounted: the launcher pods' cgroups need one");
    }

    public LauncherPods(Path work) {
        this.work = work;
    }

    /**
     * The machine of a test guest as a launcher would run it: the local runtime's command line for {@code spec}
     * (instance files in the pod's directory), named {@code <namespace>_<spec.name>}.
     */
    List<String> machine(String namespace, VmSpec spec, Path podDir, Path disk) {
        RuntimeConfig config = RuntimeConfig.defaults(work);
        List<String> args = new QemuCommandLine(config.qemuBinary()).build(spec, Accelerator.TCG, QemuCommandLine.InstancePaths.in(podDir),
                0, false, disk);
        return args.stream().map(a -> a.replace("guest=" + spec.name() + ",", "guest=" + namespace + "_" + spec.name() + ",")).toList();
    }

    /** Starts the QEMU of VMI {@code namespace/spec.name} in pod {@code pod}, with {@code annotations} (JSON members) on the VMI. */
    public Launcher launch(String pod, String namespace, VmSpec spec, String annotations) throws Exception {
        return launch(pod, namespace, spec, annotations, null);
    }

    /** Where virt-launcher puts a containerDisk's writable overlay, in the pod. */
    public static final String OVERLAY_IN_POD = "/var/run/kubevirt-ephemeral-disks/disk-data/rootdisk/disk.qcow2";

    /**
     * As {@link #launch(String, String, VmSpec, String)}, with a containerDisk-like root disk when {@code base} is given:
     * a fresh qcow2 overlay over {@code base} in the pod's ephemeral-disks emptyDir, at {@link #OVERLAY_IN_POD}.
     */
    public Launcher launch(String pod, String namespace, VmSpec spec, String annotations, Path base) throws Exception {
        return launch(pod, namespace, spec, annotations, base, null);
    }

    /**
     * As {@link #launch(String, String, VmSpec, String, Path)}, with QEMU run as {@code uid} (KubeVirt's non-root
     * virt-launcher runs it as 107) owning its pod's directories, as the pod's fsGroup makes it.
     */
    public Launcher launch(String pod, String namespace, VmSpec spec, String annotations, Path base, Integer uid) throws Exception {
        return launch(pod, namespace, spec, annotations, base, uid, true, newIdentity(java.util.UUID.randomUUID().toString()));
    }

    /** As {@link #launch(String, String, VmSpec, String)}, in the pod whose API object has UID {@code podUid}. */
    public Launcher launchInPod(String pod, String namespace, VmSpec spec, String annotations, String podUid) throws Exception {
        return launch(pod, namespace, spec, annotations, null, null, true, newIdentity(podUid));
    }

    private static PodIdentity newIdentity(String podUid) {
        byte[] id = new byte[32];
        new java.security.SecureRandom().nextBytes(id);
        return new PodIdentity(podUid, java.util.HexFormat.of().formatHex(id));
    }

    private Launcher launch(String pod, String namespace, VmSpec spec, String annotations, Path base, Integer uid, boolean name,
                            PodIdentity identity) throws Exception {
        Path cgroup = Files.createDirectories(cgroup2().resolve("mekha-test-" + ProcessHandle.current().pid()).resolve("kubepods")
                .resolve("pod" + identity.podUid()).resolve(identity.containerId()));
        cgroups.add(cgroup);
        Path dir = Files.createDirectories(work.resolve(pod));
        Path podPrivate = Files.createDirectories(work.resolve("pods/" + pod + "/volumes/kubernetes.io~empty-dir/private"));
        Path ephemeral = Files.createDirectories(work.resolve("pods/" + pod + "/volumes/kubernetes.io~empty-dir/ephemeral-disks"));
        if (base != null) {
            Path overlay = Files.createDirectories(ephemeral.resolve("disk-data/rootdisk")).resolve("disk.qcow2");
            Process img = new ProcessBuilder(RuntimeConfig.defaults(work).qemuImg(), "create", "-q", "-f", "qcow2", "-b", base.toAbsolutePath().toString(),
                    "-F", "qcow2", overlay.toString()).redirectErrorStream(true).start();
            assertThat(img.waitFor()).as(new String(img.getInputStream().readAllBytes())).isZero();
        }
        DomainHookTest.Run hooked = DomainHookTest.hook(DomainHookTest.vmi(annotations), DomainHookTest.sample());
        assertThat(hooked.exit()).as("the hook ran: %s", hooked.err()).isZero();
        // into the pod container's cgroup first, then the pod's mounts; exec keeps the process: QEMU runs there
        List<String> command = new ArrayList<>(List.of("unshare", "--mount", "--propagation", "private", "sh", "-c",
                "echo $$ > \"$2/cgroup.procs\" && mkdir -p /var/run/kubevirt-private /var/run/kubevirt-ephemeral-disks"
                        + " && mount --bind \"$0\" /var/run/kubevirt-private"
                        + " && mount --bind \"$1\" /var/run/kubevirt-ephemeral-disks && shift 2 && exec \"$@\"", podPrivate.toString(),
                ephemeral.toString(), cgroup.toString()));
        if (uid != null) {
            for (Path owned : List.of(dir, podPrivate, ephemeral)) {
                try (var tree = Files.walk(owned)) {
                    for (Path p : tree.toList()) {
                        Files.setAttribute(p, "unix:uid", uid);
                        Files.setAttribute(p, "unix:gid", uid);
                    }
                }
            }
            command.addAll(List.of("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--"));
        }
        command.addAll(machine(namespace, spec, dir, base == null ? null : Path.of(OVERLAY_IN_POD)));
        command.addAll(DomainHookTest.qemuArgs(DomainHookTest.parse(hooked.out())));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("qemu.log").toFile()).start();
        qemus.add(process);
        if (name) {
            Map<String, PodIdentity> pods = Map.of(namespace + "_" + spec.name(), identity);
            named.putAll(pods);
            agents.forEach(a -> a.accept(pods));
        }
        return new Launcher(process, podPrivate, QemuCommandLine.InstancePaths.in(dir).console(), identity);
    }

    /** The QEMU dies as it would with its node or pod: at once, unannounced. */
    public static void crash(Launcher launcher) throws InterruptedException {
        launcher.process().destroyForcibly();
        launcher.process().waitFor();
    }

    public static void awaitRound(Path console, long round) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (!Files.exists(console) || DirtierLog.lastRound(Files.readAllLines(console)) < round) {
            assertThat(System.nanoTime()).as("round %d in %s", round, console).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    @Override
    public void close() throws Exception {
        for (Process p : qemus) {
            p.destroyForcibly();
            p.waitFor();
        }
        for (Path cgroup : cgroups) {
            for (Path dir = cgroup; dir != null && dir.getFileName().toString().matches("mekha-test-.*|kubepods|pod.*|[0-9a-f]{64}"); dir = dir.getParent()) {
                try {
                    Files.deleteIfExists(dir); // rmdir: empty once its processes are gone
                } catch (java.io.IOException busy) {
                    break;
                }
            }
        }
        // the mount points the launchers made on the host's /run, if they are still empty
        for (String dir : List.of("/run/kubevirt-private", "/run/kubevirt-ephemeral-disks")) {
            try {
                Files.deleteIfExists(Path.of(dir));
            } catch (java.nio.file.DirectoryNotEmptyException | java.nio.file.AccessDeniedException kept) {
                // something else keeps it
            }
        }
    }
}
