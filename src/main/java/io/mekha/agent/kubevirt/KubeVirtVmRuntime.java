package io.mekha.agent.kubevirt;

import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.model.PodIdentity;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * The agent's runtime on a KubeVirt node: the VMs are the VirtualMachineInstances KubeVirt runs
 * here, found through the host's process table ({@link LauncherQemus}) and driven through the
 * monitor Mekha's hook gave their QEMU; each is named by its KubeVirt domain,
 * {@code <namespace>_<vmi>}. Level 0 is the migration stream held in {@code level0Dir} (a tmpfs
 * in the DaemonSet): virt-launcher's QEMU is another build with its own machine types, started
 * by libvirt with file descriptors no second process could reuse, so the agent cannot mirror it
 * with a shadow. A restart feeds the stream to the QEMU of the restored VMI, which the hook started
 * waiting for it ({@code -incoming defer}). The agent never starts or kills a VM here: KubeVirt does.
 */
public final class KubeVirtVmRuntime implements VmRuntime {
    private static final Logger LOG = Logger.getLogger(KubeVirtVmRuntime.class);
    private static final Duration INCOMING_WAIT = Duration.ofMinutes(3);
    /** Room for pages sent again during the live stage, beyond the guest's RAM. */
    private static final long BOUND_SLACK_MIB = 64;

    private final RuntimeConfig config;
    private final LauncherQemus launchers;
    private final Path level0Dir;
    private final Duration incomingWait;
    private final java.util.function.Predicate<LauncherQemu> onThisNode;
    /**
     * A VMI's QEMU the agent drives: its connection, where it lives, and its writable disks that live only in its pod.
     * Everything in the pod is reached inside its root ({@link PodRoot}), held open: the monitor socket, the one pod disk
     * a checkpoint takes along, the sockets' directory.
     */
    private record Attachment(QemuVm vm, LauncherQemu launcher, List<String> podDisks, PodRoot root, PodRoot.Opened monitor,
                              PodRoot.Opened disk, PodSockets sockets) {
        /** Lets go of the monitor (the VM is KubeVirt's) and of every descriptor into the pod. */
        void close() {
            vm.kill();
            sockets.close();
            if (disk != null) {
                disk.close();
            }
            monitor.close();
            root.close();
        }
    }

    private final Map<String, Attachment> attached = new ConcurrentHashMap<>();
    private final AtomicLong seq = new AtomicLong();

    /**
     * @param procRoot the host's /proc (the agent has hostPID)
     * @param level0Dir where held streams live (memory)
     */
    private final Map<String, PodIdentity> expected = new java.util.concurrent.ConcurrentHashMap<>();

    public KubeVirtVmRuntime(RuntimeConfig config, Path procRoot, Path level0Dir) {
        this(config, procRoot, level0Dir, INCOMING_WAIT);
    }

    /** @param incomingWait how long a restart waits for the restored VMI's QEMU to come up on this node */
    public KubeVirtVmRuntime(RuntimeConfig config, Path procRoot, Path level0Dir, Duration incomingWait) {
        this(config, procRoot, level0Dir, incomingWait, launcher -> true);
    }

    /**
     * @param onThisNode which of the launchers in the process table are this node's. The DaemonSet's agent sees its own
     *     node's processes only (hostPID), so all of them; where several nodes' pods share one process table (tests that
     *     play a cluster on one machine), the pods scheduled on this node
     */
    public KubeVirtVmRuntime(RuntimeConfig config, Path procRoot, Path level0Dir, Duration incomingWait,
                             java.util.function.Predicate<LauncherQemu> onThisNode) {
        this.config = config;
        this.launchers = new LauncherQemus(procRoot);
        this.level0Dir = level0Dir;
        this.incomingWait = incomingWait;
        this.onThisNode = onThisNode;
    }

    @Override
    public String kind() {
        return "kubevirt";
    }

    @Override
    public RuntimeConfig config() {
        return config;
    }

    @Override
    public QemuVm start(VmSpec spec) throws VmStartException {
        throw new VmStartException("this agent runs on KubeVirt, where KubeVirt starts the VMs: create a VirtualMachine (with Mekha's"
                + " hook sidecar, see qemu-hooks/) and checkpoint it by name");
    }

    /** The QEMUs of the VMIs on this node that carry Mekha's monitor, connected (a VMI without it is left alone). */
    @Override
    public synchronized List<QemuVm> discover() {
        List<LauncherQemu> found;
        try {
            found = launchers.all().stream().filter(onThisNode).toList();
        } catch (IOException e) {
            LOG.warnf("cannot read the process table: %s", e.getMessage());
            return attached.values().stream().map(Attachment::vm).toList();
        }
        List<QemuVm> vms = new ArrayList<>();
        for (LauncherQemu launcher : oneByDomain(found)) {
            Attachment known = attached.get(launcher.domain());
            if (known != null && known.vm().pid() == launcher.pid() && known.vm().isAlive()
                    && known.vm().qmp().state() == QmpClient.State.RUNNING) {
                vms.add(known.vm());
                continue;
            }
            if (known != null) {
                known.close(); // lets go of a monitor whose QEMU is gone or replaced
                attached.remove(launcher.domain());
            }
            if (!PodPaths.exists(launcher.monitor())) {
                continue; // a VMI started without Mekha's hook
            }
            try {
                Attachment attachment = attach(launcher);
                attached.put(launcher.domain(), attachment);
                vms.add(attachment.vm());
            } catch (IOException e) {
                LOG.warnf("VMI %s/%s (pid %d): cannot reach Mekha's monitor: %s", launcher.namespace(), launcher.name(), launcher.pid(),
                        e.getMessage());
            }
        }
        attached.values().removeIf(a -> {
            boolean gone = found.stream().noneMatch(l -> l.pid() == a.vm().pid());
            if (gone) {
                a.close();
            }
            return gone;
        });
        return vms;
    }

    /**
     * One QEMU per VMI name: where several claim the same one (a tenant's process can name itself anything), the one in
     * the launcher pod the operator named; none while that is unknown.
     */
    private List<LauncherQemu> oneByDomain(List<LauncherQemu> found) {
        Map<String, List<LauncherQemu>> byDomain = new java.util.LinkedHashMap<>();
        found.forEach(l -> byDomain.computeIfAbsent(l.domain(), k -> new ArrayList<>()).add(l));
        List<LauncherQemu> chosen = new ArrayList<>();
        byDomain.forEach((domain, candidates) -> {
            if (candidates.size() == 1) {
                chosen.add(candidates.get(0)); // checked against its pod before anything is done to it
                return;
            }
            PodIdentity pod = expected.get(domain);
            candidates.stream().filter(c -> pod != null && c.notIn(pod) == null).findFirst().ifPresentOrElse(chosen::add,
                    () -> LOG.warnf("%d QEMUs (pids %s) say they are VMI %s; none is attached until the operator names its launcher pod",
                            candidates.size(), candidates.stream().map(LauncherQemu::pid).toList(), domain.replaceFirst("_", "/")));
        });
        return chosen;
    }

    /** The launcher pods the operator named, by VM name ({@code <namespace>_<vmi>}). */
    @Override
    public void expectPods(Map<String, PodIdentity> pods) {
        expected.putAll(pods);
    }

    @Override
    public synchronized String identityProblem(List<QemuVm> vms) {
        for (QemuVm vm : vms) {
            Attachment a = attached.get(vm.name());
            if (a == null || a.vm() != vm) {
                return "VM '" + vm.name() + "': its QEMU (pid " + vm.pid() + ") is no longer attached on this node";
            }
            String problem = a.launcher().notIn(expected.get(vm.name()));
            if (problem != null) {
                return problem;
            }
        }
        return null;
    }

    private Attachment attach(LauncherQemu launcher) throws QmpException, IOException {
        ProcessHandle process = ProcessHandle.of(launcher.pid()).orElseThrow(() -> new IOException("process " + launcher.pid() + " is gone"));
        PodRoot root = PodRoot.ofProcess(launcher.processDir());
        PodRoot.Opened monitor = null;
        PodRoot.Opened disk = null;
        QmpClient qmp = null;
        try {
            monitor = root.open(LauncherQemus.MONITOR_IN_POD);
            qmp = QmpClient.connect(monitor.path(), config.qmpTimeout());
            List<String> podDisks = podDisks(qmp);
            disk = podDisks.size() == 1 ? openDisk(launcher, root, podDisks.get(0)) : null;
            return attach(launcher, process, root, monitor, disk, qmp, podDisks);
        } catch (IOException | RuntimeException e) {
            if (qmp != null) {
                qmp.close();
            }
            for (AutoCloseable c : new AutoCloseable[] {disk, monitor, root}) {
                try {
                    if (c != null) {
                        c.close();
                    }
                } catch (Exception ignored) {
                    // closing descriptors of a pod we could not attach to
                }
            }
            throw e;
        }
    }

    /** The VM's pod disk opened inside its pod, or null (said in the log; a checkpoint then refuses with the reason). */
    private static PodRoot.Opened openDisk(LauncherQemu launcher, PodRoot root, String inPod) {
        try {
            return root.open(inPod);
        } catch (IOException e) {
            LOG.warnf("VMI %s/%s: %s; it cannot be checkpointed with its disk", launcher.namespace(), launcher.name(), e.getMessage());
            return null;
        }
    }

    private Attachment attach(LauncherQemu launcher, ProcessHandle process, PodRoot root, PodRoot.Opened monitor, PodRoot.Opened podDisk,
                              QmpClient qmp, List<String> podDisks) throws IOException {
        List<String> args = launcher.commandLine();
        // the one disk a checkpoint takes along (more are refused when a checkpoint starts); its path in the pod
        Path disk = podDisks.size() == 1 ? Path.of(podDisks.get(0)) : null;
        VmSpec spec = VmSpec.named(launcher.domain()).memoryMiB(memoryMiB(args)).disk(disk).build();
        podDisks.forEach(d -> LOG.debugf("VMI %s/%s: disk %s lives only in its pod", launcher.namespace(), launcher.name(), d));
        Path dir = Files.createDirectories(config.workDir().resolve("attached").resolve(launcher.domain() + "-" + launcher.pid()));
        PodSockets sockets = new PodSockets(launcher, root);
        return new Attachment(QemuVm.attached(spec, accelerator(args), QemuCommandLine.InstancePaths.in(dir), args, process, qmp, sockets),
                launcher, podDisks, root, monitor, podDisk, sockets);
    }

    /** Held streams for all of {@code sources}, each bounded by its guest RAM and some room, in the level-0 filesystem. */
    @Override
    public String level0Shortfall(List<QemuVm> sources, long promisedMiB) {
        long need = sources.stream().mapToLong(v -> level0NeedMiB(v.spec().memoryMiB())).sum();
        return io.mekha.agent.level0.MemoryBound.shortfall(need + promisedMiB, level0Dir, "streams held in memory for " + sources.size()
                + " VM(s)" + (promisedMiB > 0 ? " and the " + promisedMiB + " MiB promised to other nodes' copies" : ""));
    }

    /** A held stream: the guest's RAM and some room for pages sent again. */
    @Override
    public long level0NeedMiB(long guestMiB) {
        return guestMiB + BOUND_SLACK_MIB;
    }

    @Override
    public Path level0Dir() {
        return level0Dir;
    }

    /** The streams (own and partners') an earlier agent of this pod held: no session of this agent can use them. */
    @Override
    public long forgetEarlierLevel0() {
        if (!Files.isDirectory(level0Dir)) {
            return 0;
        }
        long freed = 0;
        try (var files = Files.walk(level0Dir)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                if (p.equals(level0Dir)) {
                    continue; // the volume's mount point stays
                }
                freed += Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS) ? Files.size(p) : 0;
                Files.delete(p);
            }
        } catch (IOException e) {
            LOG.warnf("cannot clear what an earlier agent left in %s: %s", level0Dir, e.getMessage());
        }
        if (freed > 0) {
            LOG.infof("freed %d MiB of level-0 memory an earlier agent of this node left in %s (its checkpoints went with it)", freed >> 20,
                    level0Dir);
        }
        return freed;
    }

    /** The stream, held in memory, bounded: the guest's RAM and some room for pages sent again. */
    @Override
    public Level0Copy level0(QemuVm source) throws VmStartException {
        Attachment attachment = attachmentOf(source);
        List<String> podDisks = attachment.podDisks();
        if (podDisks.size() > 1) {
            throw new VmStartException("VM '" + source.name() + "' has " + podDisks.size() + " writable disks that live only in its pod "
                    + podDisks + "; Mekha captures one such disk per VM for now: keep the others on PersistentVolumeClaims");
        }
        long bound = level0NeedMiB(source.spec().memoryMiB()) << 20;
        String name = source.name() + "-" + seq.incrementAndGet();
        if (podDisks.isEmpty()) {
            return new HeldStream(source, level0Dir.resolve(name + ".stream"), bound);
        }
        if (attachment.disk() == null) {
            throw new VmStartException("VM '" + source.name() + "': its disk " + podDisks.get(0) + " could not be opened inside its pod"
                    + " (a link leading out of the pod is not followed); see the agent's log");
        }
        // the disk as opened inside the pod when the agent attached: the copy at the cut reads that very file
        return new HeldStream(source, level0Dir.resolve(name + ".stream"), bound, attachment.disk().path(),
                level0Dir.resolve(name + ".disk.qcow2"));
    }

    /** Where a containerDisk's writable overlay, an ephemeral PVC's overlay, an emptyDisk live in a virt-launcher pod. */
    static final List<String> POD_DISK_DIRS = List.of("/var/run/kubevirt-ephemeral-disks/", "/run/kubevirt-ephemeral-disks/",
            "/var/run/libvirt/empty-disks/", "/run/libvirt/empty-disks/");

    /** The writable qcow2 images QEMU has open that live only in its pod (not on a PVC), by their path in the pod. */
    static List<String> podDisks(QmpClient qmp) throws QmpException {
        List<String> disks = new ArrayList<>();
        com.fasterxml.jackson.databind.JsonNode nodes = qmp.execute("query-named-block-nodes",
                QmpClient.args().put("flat", true));
        for (com.fasterxml.jackson.databind.JsonNode node : nodes) {
            String file = node.path("file").asText("");
            if (node.path("drv").asText().equals("qcow2") && !node.path("ro").asBoolean(false)
                    && POD_DISK_DIRS.stream().anyMatch(file::startsWith) && !disks.contains(file)) {
                disks.add(file);
            }
        }
        return disks;
    }

    /**
     * The QEMU of the restored VMI named {@code spec.name()} ({@code <namespace>_<vmi>}), once it runs on
     * this node waiting for its state; Mekha stops it first, which clears the start libvirt asked for
     * (libvirt's {@code cont} during an incoming migration only sets QEMU's autostart), so it stays
     * paused after loading until the coordinator resumes every VM at Tr.
     */
    @Override
    public QemuVm startIncoming(VmSpec spec, Accelerator accel, Path diskAtCut) throws VmStartException, InterruptedException {
        long deadline = System.nanoTime() + incomingWait.toNanos();
        String last = "no QEMU of that VMI on this node";
        while (true) {
            for (QemuVm vm : discover()) {
                if (!vm.name().equals(spec.name())) {
                    continue;
                }
                // never feed a VM's state to a QEMU that only says it is that VM
                String impostor = identityProblem(List.of(vm));
                if (impostor != null) {
                    last = impostor;
                    continue;
                }
                try {
                    String status = vm.qmp().execute("query-status").path("status").asText();
                    if (status.equals("inmigrate")) {
                        vm.qmp().execute("stop");
                        restoreDisk(vm, spec, diskAtCut);
                        return vm;
                    }
                    last = "its QEMU (pid " + vm.pid() + ") is '" + status + "', not waiting for a state";
                } catch (QmpException e) {
                    last = "its monitor failed: " + e.getMessage();
                }
            }
            if (System.nanoTime() > deadline) {
                throw new VmStartException("VM '" + spec.name() + "': no QEMU waiting for its state came up on this node within "
                        + incomingWait.toSeconds() + " s (" + last + "); a restored VMI needs the annotation mekha.io/restore-from and"
                        + " Mekha's hook sidecar (qemu-hooks/), and must be scheduled on this node");
            }
            Thread.sleep(200);
        }
    }

    /**
     * Puts the VM's pod-only disk as it was at the cut in place of the fresh one virt-launcher made, in place (same
     * file, same owner: QEMU has it open). QEMU opened its images inactive, as a migration's destination does, and
     * reads them anew when the incoming state is loaded, so it sees the disk at the cut.
     */
    private void restoreDisk(QemuVm vm, VmSpec saved, Path diskAtCut) throws VmStartException {
        Attachment attachment = attachmentOf(vm);
        List<String> podDisks = attachment.podDisks();
        if (saved.disk() == null && diskAtCut == null) {
            if (!podDisks.isEmpty()) {
                throw new VmStartException("VM '" + vm.name() + "': the restored instance has a disk living only in its pod " + podDisks
                        + " that the checkpoint does not hold (the VM had no such disk when it was checkpointed); restore into the"
                        + " VirtualMachine spec it was checkpointed with");
            }
            return;
        }
        if (diskAtCut == null) {
            throw new VmStartException("VM '" + vm.name() + "': the checkpoint holds no copy of its disk " + saved.disk());
        }
        String inPod = saved.disk().toString();
        if (!podDisks.contains(inPod)) {
            throw new VmStartException("VM '" + vm.name() + "': the restored instance has no disk at " + inPod + " (it has " + podDisks
                    + "); restore into the same VirtualMachine spec");
        }
        // opened inside the pod's root: a link the tenant swapped in cannot turn this write into one on the host
        try (PodRoot.Opened target = attachment.root().open(inPod)) {
            try (var from = java.nio.channels.FileChannel.open(diskAtCut, java.nio.file.StandardOpenOption.READ);
                 var to = java.nio.channels.FileChannel.open(target.path(), java.nio.file.StandardOpenOption.WRITE,
                         java.nio.file.StandardOpenOption.TRUNCATE_EXISTING)) {
                long size = from.size();
                for (long done = 0; done < size; ) {
                    done += from.transferTo(done, size - done, to);
                }
                to.force(true);
            }
        } catch (IOException e) {
            throw new VmStartException("VM '" + vm.name() + "': cannot put its disk at the cut back in its pod (" + inPod + "): "
                    + e.getMessage(), e);
        }
    }

    /** The attachment of a VM this runtime handed out (the same QemuVm instance, still attached). */
    private Attachment attachmentOf(QemuVm vm) throws VmStartException {
        Attachment a = attached.get(vm.name());
        if (a == null || a.vm() != vm) {
            throw new VmStartException("VM '" + vm.name() + "': its QEMU (pid " + vm.pid() + ") is no longer attached on this node");
        }
        return a;
    }

    @Override
    public io.mekha.agent.api.PartnerKind partnerCopies() {
        return io.mekha.agent.api.PartnerKind.STREAM;
    }

    @Override
    public boolean baseImagesOnNode() {
        return false;
    }

    @Override
    public void close() {
        attached.values().forEach(Attachment::close); // lets go of the monitors; the VMs are KubeVirt's
        attached.clear();
    }

    /** Guest RAM from {@code -m 1024}, {@code -m 1G} or libvirt's {@code -m size=1048576k,...}. */
    public static long memoryMiB(List<String> args) {
        int i = args.indexOf("-m");
        if (i < 0 || i + 1 >= args.size()) {
            return 0;
        }
        String value = args.get(i + 1);
        for (String part : value.split(",")) {
            String v = part.startsWith("size=") ? part.substring(5) : part;
            if (v.matches("\\d+[kKmMgG]?")) {
                char unit = Character.toLowerCase(v.charAt(v.length() - 1));
                long n = Long.parseLong(Character.isDigit(unit) ? v : v.substring(0, v.length() - 1));
                return switch (unit) {
                    case 'k' -> n / 1024;
                    case 'g' -> n * 1024;
                    default -> n;
                };
            }
        }
        return 0;
    }

    /** KVM or TCG, from {@code -accel X} or {@code -machine ...,accel=X}; KVM when neither says (libvirt's kvm domains). */
    public static Accelerator accelerator(List<String> args) {
        for (int i = 0; i + 1 < args.size(); i++) {
            String value = args.get(i + 1);
            if (args.get(i).equals("-accel")) {
                return value.startsWith("tcg") ? Accelerator.TCG : Accelerator.KVM;
            }
            if (args.get(i).equals("-machine") && value.contains("accel=")) {
                return value.contains("accel=tcg") ? Accelerator.TCG : Accelerator.KVM;
            }
        }
        return Accelerator.KVM;
    }
}
