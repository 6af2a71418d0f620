package io.mekha.agent.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import io.mekha.agent.network.SegmentPort;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.ConsoleLog;
import io.mekha.agent.qemu.ProcessKiller;
import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.agent.qemu.QemuImg;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;

/**
 * The local VM runtime: starts QEMU processes on this host for VMs and their shadows, with a
 * console file and a QMP socket each, and makes sure none outlives its owner.
 *
 * <p>Every QEMU is started through {@code setpriv --pdeathsig KILL} from one long-lived launcher
 * thread: the kernel then kills it if this JVM dies, however it dies. (The death signal follows the
 * thread that forked, so forking from short-lived threads would kill VMs at random.)
 */
public final class LocalVmRuntime implements VmRuntime {
    private static final Logger LOG = Logger.getLogger(LocalVmRuntime.class);
    private static final int UNIX_PATH_MAX = 107;
    private static final Duration KVM_BOOT_WATCHDOG = Duration.ofSeconds(20);
    private static final Path SETPRIV = Path.of("/usr/bin/setpriv");

    private final RuntimeConfig config;
    private final QemuCommandLine commandLine;
    private final ExecutorService launcher;
    private final List<QemuVm> instances = new CopyOnWriteArrayList<>();
    private final AtomicInteger instanceSeq = new AtomicInteger();
    private final Thread shutdownHook;

    public LocalVmRuntime(RuntimeConfig config) {
        this.config = config;
        this.commandLine = new QemuCommandLine(config.qemuBinary());
        this.launcher = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "qemu-launcher");
            t.setDaemon(true);
            return t;
        });
        this.shutdownHook = new Thread(this::killAll, "qemu-reaper");
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    @Override
    public String kind() {
        return "local";
    }

    @Override
    public List<QemuVm> discover() {
        return List.of(); // every VM here is one the agent started
    }

    /** Shadow QEMUs for all of {@code sources}: guest RAM and QEMU's own, each. */
    @Override
    public String level0Shortfall(List<QemuVm> sources, long promisedMiB) {
        long need = sources.stream().mapToLong(v -> level0NeedMiB(v.spec().memoryMiB())).sum();
        return io.mekha.agent.level0.MemoryBound.shortfall(need + promisedMiB, null, "shadow QEMUs for " + sources.size() + " VM(s)"
                + (promisedMiB > 0 ? " and the " + promisedMiB + " MiB promised to other nodes' copies" : ""));
    }

    /** A shadow: the VM's machine, waiting paused for the state (the prepare checked that they all fit: {@link #level0Shortfall}). */
    @Override
    public io.mekha.agent.level0.Level0Copy level0(QemuVm source) throws VmStartException, InterruptedException {
        try {
            return new io.mekha.agent.level0.ShadowCopy(startShadow(source));
        } catch (VmStartException e) {
            throw new VmStartException("VM '" + source.name() + "': cannot start its shadow: " + e.getMessage(), e);
        }
    }

    @Override
    public io.mekha.agent.api.PartnerKind partnerCopies() {
        return io.mekha.agent.api.PartnerKind.SHADOW;
    }

    @Override
    public RuntimeConfig config() {
        return config;
    }

    /** Starts a VM and waits until its guest has booted (the boot watchdog). */
    @Override
    public QemuVm start(VmSpec spec) throws VmStartException, InterruptedException {
        Accelerator accel = config.accelerator();
        if (accel == Accelerator.AUTO) {
            if (kvmAvailable()) {
                try {
                    return startAndAwaitBoot(spec, Accelerator.KVM, KVM_BOOT_WATCHDOG);
                } catch (VmStartException e) {
                    LOG.warnf("VM '%s' did not boot under KVM (%s); falling back to TCG", spec.name(), firstLine(e.getMessage()));
                }
            }
            accel = Accelerator.TCG;
        }
        return startAndAwaitBoot(spec, accel, config.bootTimeout());
    }

    /** Starts a shadow of {@code source}: same machine and devices, waiting for incoming state, paused. */
    public QemuVm startShadow(QemuVm source) throws VmStartException, InterruptedException {
        return launch(source.spec(), QemuVm.Role.SHADOW, source.accelerator(), true, source.disk());
    }

    /**
     * Starts a QEMU for {@code spec} that waits, paused, for a stored state ({@code -incoming defer -S}):
     * a restart from disk. {@code accel} must be what the state was saved under.
     */
    @Override
    public QemuVm startIncoming(VmSpec spec, Accelerator accel, Path diskAtCut) throws VmStartException, InterruptedException {
        if (spec.disk() != null && diskAtCut == null) {
            throw new VmStartException("VM '" + spec.name() + "' has a disk: restarting it needs the disk as it was at the cut");
        }
        return launch(spec, QemuVm.Role.SHADOW, accel == Accelerator.AUTO ? Accelerator.TCG : accel, true, diskAtCut);
    }

    /** Every QEMU this runtime started that is still alive. */
    public List<QemuVm> running() {
        return instances.stream().filter(QemuVm::isAlive).toList();
    }

    private QemuVm startAndAwaitBoot(VmSpec spec, Accelerator accel, Duration watchdog)
            throws VmStartException, InterruptedException {
        QemuVm vm = launch(spec, QemuVm.Role.PRIMARY, accel, false, spec.disk());
        long deadline = System.nanoTime() + watchdog.toNanos();
        while (System.nanoTime() < deadline) {
            if (vm.console().text().contains(spec.bootMarker())) {
                LOG.debugf("VM '%s' booted under %s (pid %d)", spec.name(), accel, vm.pid());
                return vm;
            }
            if (!vm.isAlive()) {
                vm.kill();
                throw new VmStartException("VM '" + spec.name() + "': QEMU exited while the guest was booting"
                        + describeExit(vm.paths().log(), vm.console()));
            }
            Thread.sleep(50);
        }
        vm.kill();
        throw new VmStartException("VM '" + spec.name() + "' did not print its boot marker '" + spec.bootMarker()
                + "' within " + watchdog + " under " + accel + "; QEMU was stopped. Console tail:\n" + vm.console().tail(5));
    }

    /**
     * @param diskBacking what the instance's own disk overlay is created on: the VM's base image, the source's current
     *     overlay (a shadow: frozen at the cut later), or a disk restored from storage; ignored for VMs without a disk
     */
    private QemuVm launch(VmSpec spec, QemuVm.Role role, Accelerator accel, boolean incoming, Path diskBacking)
            throws VmStartException, InterruptedException {
        String dirName = spec.name() + (role == QemuVm.Role.SHADOW ? ".shadow" : "") + "-" + instanceSeq.incrementAndGet();
        QemuCommandLine.InstancePaths paths = QemuCommandLine.InstancePaths.in(config.workDir().resolve(dirName));
        int socketBytes = paths.qmpSocket().toString().getBytes(StandardCharsets.UTF_8).length;
        if (socketBytes > UNIX_PATH_MAX) {
            throw new VmStartException("VM '" + spec.name() + "': QMP socket path " + paths.qmpSocket() + " is " + socketBytes
                    + " bytes, over the unix socket limit of " + UNIX_PATH_MAX + "; choose a shorter work directory");
        }
        try {
            Files.createDirectories(paths.dir());
            Files.deleteIfExists(paths.qmpSocket());
        } catch (IOException e) {
            throw new VmStartException("VM '" + spec.name() + "': cannot create " + paths.dir() + ": " + e.getMessage(), e);
        }
        requireExecutable(spec, config.qemuBinary());
        Path overlay = spec.disk() == null ? null : createOverlay(spec, diskBacking, paths.dir().resolve("disk-0.qcow2"));
        int nicPort = 0;
        if (spec.network() != null) {
            try {
                nicPort = SegmentPort.freeUdpPort();
            } catch (IOException e) {
                throw new VmStartException("VM '" + spec.name() + "': no free UDP port for its NIC: " + e.getMessage(), e);
            }
        }
        List<String> args = commandLine.build(spec, accel, paths, nicPort, incoming, overlay);
        List<String> command = new ArrayList<>();
        if (Files.isExecutable(SETPRIV)) {
            command.addAll(List.of(SETPRIV.toString(), "--pdeathsig", "KILL", "--"));
        }
        command.addAll(args);
        Process process = spawn(spec, command, paths);
        QmpClient qmp;
        try {
            qmp = connectMonitor(spec, process, paths);
        } catch (VmStartException | RuntimeException e) {
            ProcessKiller.killTree(process);
            throw e;
        }
        niceAllButMainLoop(spec, process);
        QemuVm vm = new QemuVm(spec, role, accel, paths, args, process, qmp, nicPort, overlay);
        instances.add(vm);
        if (role == QemuVm.Role.PRIMARY) {
            try {
                vm.attachNic();
            } catch (IOException e) {
                vm.kill();
                throw new VmStartException("VM '" + spec.name() + "': cannot attach its NIC to segment '"
                        + spec.network().segment() + "': " + e.getMessage(), e);
            }
        }
        return vm;
    }

    /**
     * Runs every thread of a QEMU that has answered its monitor at {@link RuntimeConfig#vmNice()} (its vCPUs, RCU, I/O
     * threads), all but its main loop, which stays at the agent's niceness. The vCPUs of busy guests then leave the agent
     * the CPU at its rendezvous instants, and QEMU's main loop, which takes the monitor's commands (and does almost
     * nothing else under TCG), acts on a {@code stop} at Ts and a {@code cont} at Tr as promptly as the agent sends them.
     * With the whole QEMU niced, a {@code cont} sent at Tr waited 1-10 ms for a CPU behind the JVMs' threads, and a
     * {@code stop} at Ts behind the busy vCPUs: the guests' pauses, and so their clocks' distances, differed by as much.
     * Threads QEMU starts later (a migration's) start at the main loop's niceness. Raising a niceness needs no privilege;
     * if {@code renice} fails the VM runs on at the agent's niceness, which is said.
     */
    private void niceAllButMainLoop(VmSpec spec, Process process) throws InterruptedException {
        if (config.vmNice() <= 0) {
            return;
        }
        List<String> threads = new ArrayList<>();
        try (var tasks = Files.list(Path.of("/proc", Long.toString(process.pid()), "task"))) {
            tasks.map(t -> t.getFileName().toString()).filter(tid -> !tid.equals(Long.toString(process.pid()))).forEach(threads::add);
        } catch (IOException e) {
            LOG.warnf("VM '%s': cannot list QEMU's threads to nice them (%s); its vCPUs run at the agent's niceness", spec.name(),
                    e.getMessage());
            return;
        }
        if (threads.isEmpty()) {
            return;
        }
        List<String> command = new ArrayList<>(List.of("renice", "--priority", Integer.toString(config.vmNice()), "-p"));
        command.addAll(threads);
        try {
            Process renice = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(renice.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (renice.waitFor() != 0) {
                LOG.warnf("VM '%s': renice of QEMU's threads failed (%s); its vCPUs run at the agent's niceness", spec.name(), out);
            }
        } catch (IOException e) {
            LOG.warnf("VM '%s': cannot run renice (%s); its vCPUs run at the agent's niceness", spec.name(), e.getMessage());
        }
    }

    /**
     * A qcow2 overlay of the instance's own on {@code backing}: the backing file is never written by this
     * QEMU. Created without opening the backing file (another QEMU may be writing it; its size is read
     * with a shared read).
     */
    private Path createOverlay(VmSpec spec, Path backing, Path overlay) throws VmStartException, InterruptedException {
        Path base = backing.toAbsolutePath();
        QemuImg qemuImg = new QemuImg(config);
        try {
            JsonNode info = qemuImg.info(base);
            qemuImg.run(List.of("create", "-q", "-f", "qcow2", "-u", "-b", base.toString(), "-F", info.path("format").asText("qcow2"),
                    overlay.toString(), Long.toString(info.path("virtual-size").asLong())));
            return overlay;
        } catch (IOException e) {
            throw new VmStartException("VM '" + spec.name() + "': cannot create its disk overlay on " + base + ": " + e.getMessage(), e);
        }
    }

    private Process spawn(VmSpec spec, List<String> command, QemuCommandLine.InstancePaths paths)
            throws VmStartException, InterruptedException {
        ProcessBuilder builder = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(paths.log().toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        try {
            return launcher.submit(builder::start).get();
        } catch (ExecutionException e) {
            throw new VmStartException("VM '" + spec.name() + "': cannot run " + command.get(0) + ": "
                    + e.getCause().getMessage() + " (is QEMU installed? run scripts/install-deps.sh)", e.getCause());
        }
    }

    private QmpClient connectMonitor(VmSpec spec, Process process, QemuCommandLine.InstancePaths paths)
            throws VmStartException, InterruptedException {
        long deadline = System.nanoTime() + config.qmpTimeout().toNanos();
        while (!Files.exists(paths.qmpSocket())) {
            if (!process.isAlive()) {
                throw new VmStartException("VM '" + spec.name() + "': QEMU exited at start" + describeExit(paths.log(), null));
            }
            if (System.nanoTime() > deadline) {
                throw new VmStartException("VM '" + spec.name() + "': QEMU did not create its monitor socket "
                        + paths.qmpSocket() + " within " + config.qmpTimeout());
            }
            Thread.sleep(20);
        }
        Duration left = Duration.ofNanos(Math.max(1, deadline - System.nanoTime()));
        try {
            return QmpClient.connect(paths.qmpSocket(), left, Duration.ofSeconds(30));
        } catch (QmpException e) {
            // a QEMU that fails at start (memory it cannot get, say) opens its monitor and then exits: the
            // connection resets while the process is still going away; give it a moment so its words are reported
            boolean exited = process.waitFor(2, TimeUnit.SECONDS);
            String exit = exited ? describeExit(paths.log(), null) : "";
            throw new VmStartException("VM '" + spec.name() + "': QEMU's monitor did not answer: " + e.getMessage()
                    + exit + "; QEMU was stopped", e);
        }
    }

    private static String describeExit(Path log, ConsoleLog console) {
        StringBuilder text = new StringBuilder();
        try {
            String qemuSaid = Files.exists(log) ? Files.readString(log).strip() : "";
            if (!qemuSaid.isEmpty()) {
                text.append("; QEMU said: ").append(qemuSaid);
            }
        } catch (IOException ignored) {
            // the message is still useful without QEMU's words
        }
        if (console != null && !console.tail(3).isBlank()) {
            // a guest kernel that crashed says why above its stack trace, which the tail alone would show
            console.lines().stream().filter(l -> l.contains("Kernel panic") || l.contains("BUG:") || l.contains("Oops:")).findFirst()
                    .ifPresent(line -> text.append("\nthe guest's kernel said: ").append(line.strip()));
            text.append("\nconsole tail:\n").append(console.tail(3));
        }
        return text.toString();
    }

    private static void requireExecutable(VmSpec spec, String binary) throws VmStartException {
        boolean found = binary.contains("/") ? Files.isExecutable(Path.of(binary))
                : java.util.Arrays.stream(System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":"))
                        .anyMatch(dir -> Files.isExecutable(Path.of(dir, binary)));
        if (!found) {
            throw new VmStartException("VM '" + spec.name() + "': QEMU binary '" + binary
                    + "' not found or not executable (install QEMU with scripts/install-deps.sh)");
        }
    }

    private static boolean kvmAvailable() {
        Path kvm = Path.of("/dev/kvm");
        return Files.isReadable(kvm) && Files.isWritable(kvm);
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    private void killAll() {
        for (QemuVm vm : instances) {
            vm.kill();
        }
    }

    /** Kills every QEMU this runtime started and releases the launcher thread. */
    @Override
    public void close() {
        killAll();
        instances.clear();
        launcher.shutdownNow();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException e) {
            // already shutting down: the hook runs anyway
        }
    }
}
