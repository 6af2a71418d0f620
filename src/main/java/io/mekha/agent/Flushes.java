package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.FlushResult;
import io.mekha.agent.qemu.QemuImg;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.storage.StoredStateException;
import io.mekha.agent.storage.TransferMeter;
import io.mekha.agent.storage.VmStateStreams;
import io.mekha.model.VmSpec;
import io.mekha.storage.CheckpointStore;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StoredStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * Saving a complete checkpoint's VMs to slower levels: from level 0 (a shadow streams its paused
 * state out once; a held stream can be read again and again) or from this node's level-1 copy,
 * with the VM's disk at the cut beside it. Each file is written, synced, checked and published by
 * the store; the manifest that makes a level complete comes later, from the coordinator.
 */
final class Flushes {
    private static final Logger LOG = Logger.getLogger(Flushes.class);
    private static final Duration DEFAULT_WRITE_TIMEOUT = Duration.ofMinutes(10);

    private final String node;
    /** Per level: bytes written by completed flushes, and the nanoseconds they took. */
    private final java.util.Map<StorageLevel, java.util.concurrent.atomic.AtomicLongArray> totals = new java.util.concurrent.ConcurrentHashMap<>();
    private final StorageTargets targets;
    private final VmStateStreams streams;
    private final QemuImg qemuImg;
    private final Path staging;
    private final Transfers transfers;

    Flushes(String node, StorageTargets targets, VmStateStreams streams, RuntimeConfig config, Transfers transfers) {
        this.transfers = transfers;
        this.node = node;
        this.targets = targets;
        this.streams = streams;
        this.qemuImg = new QemuImg(config);
        this.staging = config.workDir().resolve("staging");
    }

    /** Checks a flush request before anything is read; returns the level it reads from. */
    StorageLevel check(FlushRequest request) throws AgentException {
        if (request.vm() == null || request.virtualCluster() == null) {
            throw AgentException.invalid("a flush needs 'vm' and 'virtualCluster'");
        }
        try {
            StoredStream.Compression.parse(request.compression());
            CheckpointStore.requireName("virtual cluster", request.virtualCluster());
        } catch (IllegalArgumentException e) {
            throw AgentException.invalid("flush of VM '" + request.vm() + "': " + e.getMessage());
        }
        StorageLevel from = request.from() == null ? StorageLevel.L0 : request.from();
        if (from == StorageLevel.L2 || from == request.level()) {
            throw AgentException.invalid("flush of VM '" + request.vm() + "' from " + from + " to " + request.level()
                    + ": a flush goes from L0 (memory) or L1 (this node's disk) to a slower level");
        }
        targets.resolve(request.level(), request.target()); // a bad level or target is refused before anything else
        if (from == StorageLevel.L1 && request.stream() == null) {
            throw AgentException.invalid("a flush from L1 needs 'stream': the level-1 file, size and checksum to copy");
        }
        return from;
    }

    /** Bytes written by completed flushes to {@code level} and the time they took, since this agent started. */
    AgentService.FlushTotal total(StorageLevel level) {
        var t = totals.get(level);
        return new AgentService.FlushTotal(level, t == null ? 0 : t.get(0), Duration.ofNanos(t == null ? 0 : t.get(1)));
    }

    /**
     * Saves one VM of checkpoint {@code checkpoint} to the request's level, from its in-memory copy {@code holding}
     * (level 0) or from this node's level-1 copy (which the holding still describes: spec, accelerator).
     */
    FlushResult flush(String checkpoint, FlushRequest request, Level0Holding holding) throws AgentException, InterruptedException {
        StorageLevel from = check(request);
        StoredStream.Compression compression = StoredStream.Compression.parse(request.compression());
        Duration timeout = request.writeTimeout() == null ? DEFAULT_WRITE_TIMEOUT : request.writeTimeout();
        Instant started = Instant.now();
        StoredStream stream;
        StoredStream disk = null;
        // each file is written, then read back: two stages a file, and a disk at the cut is a second file
        boolean withDisk = from == StorageLevel.L1 ? request.disk() != null : holding.cutDisk() != null;
        TransferMeter meter = transfers.open(checkpoint, request.vm(), "flush to " + request.level(), withDisk ? 4 : 2);
        VmStateStreams streams = this.streams.metered(meter);
        String failure = "failed"; // replaced by the reason below; stays only for an unexpected runtime error
        synchronized (holding.streamLock()) {
            try (CheckpointStore to = targets.open(request.level(), request.target())) {
                String vc = request.virtualCluster();
                io.mekha.agent.level0.HeldState held = holding.heldState();
                if (from == StorageLevel.L0 && held != null) {
                    // a held stream can be read any number of times
                    try (InputStream in = held.open()) {
                        stream = streams.saveStream(in, held.bytes(), request.vm(), to, vc, checkpoint, compression, timeout);
                    }
                    if (holding.cutDisk() != null) {
                        // the pod's overlay as it was at the cut, whole: its backing image is the containerDisk in the pod
                        disk = streams.saveFile(holding.cutDisk(), to, vc, checkpoint, diskFileName(request.vm()), request.vm(), timeout);
                    }
                } else if (from == StorageLevel.L0) {
                    QemuVm shadow = holding.shadow();
                    if (shadow == null || !shadow.isAlive()) {
                        throw AgentException.conflict("checkpoint " + checkpoint + ": the shadow of VM '" + request.vm()
                                + "' is gone; save from L1 instead");
                    }
                    if (holding.streamedTo() != null) {
                        throw AgentException.conflict("checkpoint " + checkpoint + ": the in-memory copy of VM '" + request.vm()
                                + "' on node " + node + " was already streamed to " + holding.streamedTo()
                                + " and QEMU streams a paused VM out only once; copy from L1, or save the copy held elsewhere");
                    }
                    stream = streams.save(shadow, to, vc, checkpoint, compression, timeout);
                    holding.streamedTo(request.level().name());
                    if (holding.cutDisk() != null) {
                        disk = saveDisk(streams, holding.cutDisk(), shadow.spec(), to, vc, checkpoint, timeout);
                    }
                } else {
                    try (CheckpointStore l1 = targets.open(StorageLevel.L1, null)) {
                        stream = streams.copy(l1, to, vc, checkpoint, request.stream(), request.vm(), timeout);
                        if (request.disk() != null) {
                            disk = streams.copy(l1, to, vc, checkpoint, request.disk(), request.vm(), timeout);
                        }
                    }
                }
                failure = null;
            } catch (StoredStateException e) {
                LOG.errorf("checkpoint %s: %s", checkpoint, e.getMessage());
                failure = e.getMessage();
                throw AgentException.noRoom(e.getMessage(), e);
            } catch (IOException e) {
                failure = e.getMessage();
                throw AgentException.failed("checkpoint " + checkpoint + ": " + e.getMessage(), e);
            } catch (AgentException e) {
                failure = e.getMessage(); // the shadow gone, or streamed out already: the follower reads why
                throw e;
            } finally {
                meter.finished(failure);
            }
        }
        Instant finished = Instant.now();
        LOG.infof("checkpoint %s: VM '%s' saved to %s (%d bytes) in %d ms", checkpoint, request.vm(), request.level(), stream.bytes(),
                Duration.between(started, finished).toMillis());
        String target = request.level() == StorageLevel.L1 ? "node " + node + " " + targets.level1() : request.target().describe();
        long written = stream.bytes() + (disk == null ? 0 : disk.bytes());
        totals.computeIfAbsent(request.level(), l -> new java.util.concurrent.atomic.AtomicLongArray(2)).addAndGet(0, written);
        totals.get(request.level()).addAndGet(1, Duration.between(started, finished).toNanos());
        return new FlushResult(request.vm(), node, request.level(), target, stream, disk, holding.spec(), holding.accelerator().name(),
                started, finished);
    }

    /**
     * Saves a VM's disk at the cut: everything written above its base image, in one qcow2 image
     * whose backing file is the base (it reads frozen images only, so the running VM is never touched).
     */
    private StoredStream saveDisk(VmStateStreams streams, Path cutDisk, VmSpec spec, CheckpointStore to, String vc, String checkpoint, Duration timeout)
            throws StoredStateException, InterruptedException {
        Path flat = staging.resolve("save-" + System.nanoTime() + ".qcow2");
        try {
            Files.createDirectories(staging);
            Path base = spec.disk().toAbsolutePath();
            // a copy of the frozen top image, rebased (safe mode) onto the base: every cluster the chain between them
            // holds is copied in. (qemu-img convert -B loses the middle layers when the top one is empty.)
            Files.copy(cutDisk, flat);
            String format = qemuImg.info(base).path("format").asText("qcow2");
            qemuImg.run(List.of("rebase", "-U", "-f", "qcow2", "-b", base.toString(), "-F", format, flat.toString()));
            return streams.saveFile(flat, to, vc, checkpoint, diskFileName(spec.name()), spec.name(), timeout);
        } catch (IOException e) {
            throw new StoredStateException("saving the disk of VM '" + spec.name() + "': " + e.getMessage() + "; nothing was published", e);
        } finally {
            try {
                Files.deleteIfExists(flat);
            } catch (IOException ignored) {
                // a leftover temporary image is removed with the work directory
            }
        }
    }

    static String diskFileName(String vm) {
        return vm + ".disk.qcow2";
    }
}
