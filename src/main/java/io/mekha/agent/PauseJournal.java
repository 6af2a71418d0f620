package io.mekha.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mekha.agent.api.Json;
import io.mekha.agent.qemu.QemuVm;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * What this node may pause, on disk, so that an agent that dies between a VM's stop and its resume
 * does not leave it paused: the next agent on the node reads what is left here at start and resumes
 * those VMs that are not running (issue 14, fault 7). One small file per VM of a checkpoint, written
 * at its prepare, long before the stop and off the cut's path (temporary file, fsync, rename), and
 * removed once the checkpoint is over for the VM and it runs. On KubeVirt the work
 * directory is a hostPath, so it outlives the agent's pod; in the local mode a VM's QEMU dies with
 * its agent, and its entry is simply dropped at the next start.
 */
final class PauseJournal {
    private static final Logger LOG = Logger.getLogger(PauseJournal.class);
    private static final ObjectMapper JSON = Json.mapper();

    /**
     * One VM paused (or about to be) by this node's agent.
     *
     * @param pid QEMU's process, and {@code processStart} its start, so that a reused pid is never taken for it
     * @param since when the entry was written (the checkpoint's prepare, or the restart's arm)
     * @param resumeAt for a restart's copy, armed and waiting for its Tr: when to resume it (null for a checkpoint's VM)
     */
    record Entry(String checkpoint, String vm, long pid, Instant processStart, Instant since, Instant resumeAt) {
        boolean restart() {
            return resumeAt != null;
        }
    }

    private final Path dir;

    PauseJournal(Path dir) {
        this.dir = dir;
    }

    /** Writes down that {@code checkpoint} may pause {@code vm}; durable on return. */
    void record(String checkpoint, QemuVm vm) throws IOException {
        write(new Entry(checkpoint, vm.name(), vm.pid(), startOf(vm.pid()), Instant.now(), null));
    }

    /**
     * Writes down that a restart from {@code checkpoint} is armed to resume {@code copy} (a QEMU loaded at the cut,
     * paused) at {@code resumeAt}: once armed everywhere the restart goes ahead, so an agent that dies before that instant
     * must not leave the copy paused (on KubeVirt it is the restored VMI's own QEMU, and outlives the agent). Written
     * on the arm's path, so without fsync: the page cache outlives a killed agent, and a node that loses it loses the
     * QEMU too.
     */
    void recordRestart(String checkpoint, QemuVm copy, Instant resumeAt) throws IOException {
        write(new Entry(checkpoint, copy.name(), copy.pid(), startOf(copy.pid()), Instant.now(), resumeAt), false);
    }

    private void write(Entry entry) throws IOException {
        write(entry, true);
    }

    private void write(Entry entry, boolean durable) throws IOException {
        Files.createDirectories(dir);
        Path file = file(entry.checkpoint(), entry.vm(), entry.restart());
        Path tmp = dir.resolve("." + file.getFileName() + ".tmp");
        try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            out.write(java.nio.ByteBuffer.wrap(JSON.writeValueAsBytes(entry)));
            if (durable) {
                out.force(true);
            }
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** {@code vm} runs again (or is gone): its entry goes. */
    void clear(String checkpoint, String vm) {
        remove(checkpoint, vm, false);
    }

    /** The restart's copy of {@code vm} runs (or will not): its entry goes. */
    void clearRestart(String checkpoint, String vm) {
        remove(checkpoint, vm, true);
    }

    void clear(Entry entry) {
        remove(entry.checkpoint(), entry.vm(), entry.restart());
    }

    private void remove(String checkpoint, String vm, boolean restart) {
        try {
            Files.deleteIfExists(file(checkpoint, vm, restart));
        } catch (IOException e) {
            LOG.warnf("pause journal: cannot remove the entry of VM '%s' (%s): %s", vm, checkpoint, e.getMessage());
        }
    }

    /** The entries an earlier agent left: VMs it paused and did not see running again. Unreadable entries are reported and dropped. */
    List<Entry> leftover() {
        List<Entry> found = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return found;
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.getFileName().toString().endsWith(".json")).sorted().toList()) {
                try {
                    found.add(JSON.readValue(f.toFile(), Entry.class));
                } catch (IOException e) {
                    LOG.errorf("pause journal: cannot read %s (%s); dropped", f, e.getMessage());
                    Files.deleteIfExists(f);
                }
            }
        } catch (IOException e) {
            LOG.errorf("pause journal: cannot list %s: %s", dir, e.getMessage());
        }
        return found;
    }

    /** Whether {@code vm} is the very QEMU process the entry names (same pid, same start). */
    static boolean sameProcess(Entry entry, QemuVm vm) {
        if (vm.pid() != entry.pid()) {
            return false;
        }
        Instant start = startOf(vm.pid());
        return entry.processStart() == null || start == null || start.equals(entry.processStart());
    }

    private static Instant startOf(long pid) {
        return ProcessHandle.of(pid).flatMap(p -> p.info().startInstant()).orElse(null);
    }

    private Path file(String checkpoint, String vm, boolean restart) {
        // both are plain names (Ids.require, VmRegistry.NAME): no separator can reach the path
        return dir.resolve(checkpoint + "--" + vm + (restart ? "--restart" : "") + ".json");
    }
}
