package io.mekha.agent.qemu;

import io.mekha.agent.network.SegmentPort;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.ConsoleLog;
import io.mekha.agent.qemu.ProcessKiller;
import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One QEMU process with Mekha's monitor connection: started by the local runtime (a VM, or a
 * {@code SHADOW} waiting for incoming state, which after a restart from it is the VM), or
 * {@code ATTACHED}: started by someone else (KubeVirt's virt-launcher) and driven by Mekha
 * through a monitor of its own, never killed by Mekha.
 */
public final class QemuVm implements AutoCloseable {

    /** Whether this process is the VM itself or a shadow holding a checkpoint of it. */
    public enum Role { PRIMARY, SHADOW, ATTACHED }

    private final VmSpec spec;
    private final Accelerator accelerator;
    private final QemuCommandLine.InstancePaths paths;
    private final List<String> commandLine;
    private final ProcessHandle process;
    private volatile QmpClient qmp;
    private final int nicPort;
    private volatile Role role;
    private volatile Path disk;
    private final SocketPlace sockets;

    /** A QEMU the local runtime started itself. */
    public QemuVm(VmSpec spec, Role role, Accelerator accelerator, QemuCommandLine.InstancePaths paths,
           List<String> commandLine, Process process, QmpClient qmp, int nicPort, Path disk) {
        this(spec, role, accelerator, paths, commandLine, process.toHandle(), qmp, nicPort, disk, SocketPlace.shared(paths.dir()));
    }

    private QemuVm(VmSpec spec, Role role, Accelerator accelerator, QemuCommandLine.InstancePaths paths,
                   List<String> commandLine, ProcessHandle process, QmpClient qmp, int nicPort, Path disk, SocketPlace sockets) {
        this.sockets = sockets;
        this.spec = spec;
        this.role = role;
        this.accelerator = accelerator;
        this.paths = paths;
        this.commandLine = List.copyOf(commandLine);
        this.process = process;
        this.qmp = qmp;
        this.nicPort = nicPort;
        this.disk = disk;
    }

    /**
     * A QEMU someone else started and manages (KubeVirt's virt-launcher), reached through a
     * monitor of Mekha's own: Mekha stops, migrates and continues it, but {@link #kill} only
     * lets go of it. {@code paths.dir()} is the agent's own directory for it (sockets, logs).
     */
    public static QemuVm attached(VmSpec spec, Accelerator accelerator, QemuCommandLine.InstancePaths paths, List<String> commandLine,
                                  ProcessHandle process, QmpClient qmp, SocketPlace sockets) {
        return new QemuVm(spec, Role.ATTACHED, accelerator, paths, commandLine, process, qmp, 0, null, sockets);
    }

    /** Where this QEMU and the agent meet on unix sockets for migration streams. */
    public SocketPlace sockets() {
        return sockets;
    }

    /**
     * The disk image this QEMU writes to now: its own qcow2 overlay, whose backing chain ends in the
     * VM's base image (null for a VM without a disk). A checkpoint freezes it and moves the VM onto a new overlay.
     */
    public Path disk() {
        return disk;
    }

    /** The VM writes to {@code overlay} from now on (after a {@code blockdev-snapshot-sync}). */
    public void diskMovedTo(Path overlay) {
        this.disk = overlay;
    }

    public String name() {
        return spec.name();
    }

    public VmSpec spec() {
        return spec;
    }

    public Role role() {
        return role;
    }

    /**
     * A shadow that was resumed is the VM from now on: its NIC takes over the VM's place on the
     * segment (a paused shadow is never attached, so it never sees frames sent after its cut).
     */
    public void promote() throws IOException {
        if (role == Role.ATTACHED) {
            return; // KubeVirt's VM, and its network, stay KubeVirt's
        }
        role = Role.PRIMARY;
        attachNic();
    }

    /** Joins the VM's NIC to its segment (a VM at start, a shadow when it becomes the VM). */
    public void attachNic() throws IOException {
        if (spec.network() != null) {
            SegmentPort.attach(spec.network().hubPort(), spec.network().mac(), nicPort);
        }
    }

    public Accelerator accelerator() {
        return accelerator;
    }

    public QemuCommandLine.InstancePaths paths() {
        return paths;
    }

    /** When this QEMU last took its guest out of the running state, from its run-state trace; null without one. */
    public java.time.Instant lastLeftRunning() {
        return paths == null ? null : RunStateTrace.lastLeftRunning(paths.runStates());
    }

    public List<String> commandLine() {
        return commandLine;
    }

    public QmpClient qmp() {
        return qmp;
    }

    /**
     * A new connection to this QEMU's monitor, replacing the current one when it is closed (or, with
     * {@code evenIfOpen}, when it stopped answering): how the agent gets a VM it paused running again after
     * the connection broke. Commands in flight on the old connection fail; its event queues end.
     */
    public synchronized QmpClient reconnectMonitor(Duration timeout, boolean evenIfOpen) throws QmpException {
        QmpClient current = qmp;
        if (current.state() == QmpClient.State.RUNNING && !evenIfOpen) {
            return current;
        }
        qmp = current.reopen(timeout);
        return qmp;
    }

    public ConsoleLog console() {
        return new ConsoleLog(paths.console());
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Whether the process has exited or does so within {@code grace} (a lost monitor often precedes the exit by a moment). */
    public boolean exitedWithin(Duration grace) {
        try {
            process.onExit().get(grace.toMillis(), TimeUnit.MILLISECONDS);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !process.isAlive();
        } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
            return !process.isAlive();
        }
    }

    /**
     * Kills the process (and anything it started) at once: the simulated crash, and the last resort.
     * An {@code ATTACHED} QEMU is not Mekha's to kill: only the monitor connection is closed.
     */
    public void kill() {
        qmp.close();
        if (role == Role.ATTACHED) {
            return;
        }
        ProcessKiller.killTree(process);
        if (role == Role.PRIMARY && spec.network() != null) {
            try {
                SegmentPort.detach(spec.network().hubPort(), spec.network().mac(), nicPort);
            } catch (IOException e) {
                // the hub is gone too; nothing to detach from
            }
        }
    }

    /** Asks QEMU to quit; kills it if it has not exited within {@code grace}. */
    public void shutdown(Duration grace) {
        if (role == Role.ATTACHED) {
            qmp.close();
            return;
        }
        if (process.isAlive() && qmp.state() == QmpClient.State.RUNNING) {
            try {
                qmp.execute("quit", null, grace);
            } catch (Exception e) {
                // QEMU may close the monitor before it replies to quit; the wait below decides
            }
            exitedWithin(grace);
        }
        kill();
    }

    @Override
    public void close() {
        kill();
    }

    @Override
    public String toString() {
        return "QemuVm[" + spec.name() + " " + role + " pid=" + process.pid() + "]";
    }
}
