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
     * @param since when the entry was written (the checkpoint's prepare)
     */
    record Entry(String checkpoint, String vm, long pid, Instant processStart, Instant since) {}

    private final Path dir;

    PauseJournal(Path dir) {
        this.dir = dir;
    }

    /** Writes down that {@code checkpoint} may pause {@code vm}; durable on return. */
    void record(String checkpoint, QemuVm vm) throws IOException {
        Files.createDirectories(dir);
        Entry entry = new Entry(checkpoint, vm.name(), vm.pid(), startOf(vm.pid()), Instant.now());
        Path file = file(checkpoint, vm.name());
        Path tmp = dir.resolve("." + file.getFileName() + ".tmp");
        try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            out.write(java.nio.ByteBuffer.wrap(JSON.writeValueAsBytes(entry)));
            out.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** {@code vm} runs again (or is gone): its entry goes. */
    void clear(String checkpoint, String vm) {
        try {
            Files.deleteIfExists(file(checkpoint, vm));
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

    private Path file(String checkpoint, String vm) {
        // both are plain names (Ids.require, VmRegistry.NAME): no separator can reach the path
        return dir.resolve(checkpoint + "--" + vm + ".json");
    }
}
