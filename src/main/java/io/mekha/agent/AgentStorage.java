package io.mekha.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.FlushResult;
import io.mekha.agent.api.AgentDtos.PublishManifestRequest;
import io.mekha.agent.api.AgentDtos.StoredCheckpoint;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.AgentDtos.StoredVmResult;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.agent.api.Json;
import io.mekha.agent.runtime.Accelerator;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.runtime.QemuVm;
import io.mekha.agent.runtime.VmStartException;
import io.mekha.agent.storage.StoredStateException;
import io.mekha.agent.storage.VmStateStreams;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.CheckpointStore;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import io.mekha.storage.StoredStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * A node's part in stored checkpoints: saves shadows to level 1 (this node's directory) and
 * level 2 (shared), publishes manifests, verifies stored copies, and loads them into fresh
 * QEMUs waiting for incoming state, ready for a coordinated restart.
 */
final class AgentStorage {
    private static final Logger LOG = Logger.getLogger(AgentStorage.class);
    private static final Duration DEFAULT_WRITE_TIMEOUT = Duration.ofMinutes(10);
    private static final Duration LOAD_TIMEOUT = Duration.ofMinutes(5);

    /** How the agent finds a complete checkpoint's in-memory copy of a VM (its own shadow, or a partner's copy it holds). */
    interface Shadows {
        ShadowRef shadowOf(String checkpoint, String vm) throws AgentException;
    }

    /**
     * A paused, loaded copy of a VM at the cut.
     *
     * @param cutDisk the VM's disk frozen at the cut (null: no disk)
     * @param streamedTo where it was streamed out to already, or null (QEMU streams a paused VM out only once)
     */
    record ShadowRef(io.mekha.agent.transfer.Level0Copy copy, io.mekha.agent.runtime.VmSpec spec, Accelerator accelerator, Path cutDisk,
                     String streamedTo, java.util.function.Consumer<String> markStreamed) {}

    /** A VM loaded from storage, paused, waiting for the restart's {@code cont}. */
    record LoadedVm(CheckpointManifest.VmEntry entry, QemuVm qemu, String checkpointTimePolicy) {}

    private final String node;
    private final io.mekha.agent.runtime.VmRuntime runtime;
    private final Path level1;
    private final Path staging;
    private final VmStateStreams streams;
    private final io.mekha.agent.runtime.QemuImg qemuImg;
    private final Shadows shadows;
    private final ObjectMapper json = Json.mapper();
    private final Map<String, Object> vmLocks = new ConcurrentHashMap<>();
    private final Map<String, List<LoadedVm>> loaded = new ConcurrentHashMap<>();

    AgentStorage(String node, io.mekha.agent.runtime.VmRuntime runtime, Path level1, Shadows shadows) {
        this.node = node;
        this.runtime = runtime;
        this.level1 = level1;
        this.staging = runtime.config().workDir().resolve("staging");
        this.streams = new VmStateStreams(runtime.config().workDir().resolve("s"));
        this.qemuImg = new io.mekha.agent.runtime.QemuImg(runtime.config());
        this.shadows = shadows;
    }

    Path level1() {
        return level1;
    }

    /** The target of a level: L1 is always this node's own directory; L2 is what the request names (checked). */
    private StorageTarget resolve(StorageLevel level, StorageTarget target) throws AgentException {
        if (level == null || level == StorageLevel.L0) {
            throw AgentException.badRequest("name a storage level to use: L1 (this node's disk) or L2 (shared storage)");
        }
        if (level == StorageLevel.L1) {
            return new StorageTarget.Filesystem(level1);
        }
        if (target == null) {
            throw AgentException.badRequest("level L2 needs a 'target': {kind: filesystem, path: ...} or {kind: s3, bucket: ..., region: ...}");
        }
        try {
            target.validate();
        } catch (IllegalArgumentException e) {
            throw AgentException.badRequest("level L2 target: " + e.getMessage());
        }
        return target;
    }

    private CheckpointStore store(StorageLevel level, StorageTarget target) throws AgentException {
        return CheckpointStore.open(resolve(level, target));
    }

    /**
     * Feeds a VM's stream held in memory to the QEMU waiting for it ({@link io.mekha.agent.runtime.VmRuntime#startIncoming}:
     * on KubeVirt, the restored VMI's); returns it loaded and paused at the cut.
     */
    QemuVm feedHeld(io.mekha.agent.transfer.HeldStream held, io.mekha.agent.runtime.VmSpec spec, Accelerator accel)
            throws AgentException, InterruptedException {
        QemuVm qemu;
        try {
            qemu = runtime.startIncoming(spec, accel, held.disk());
        } catch (VmStartException e) {
            throw new AgentException(422, e.getMessage(), e);
        }
        try (java.io.InputStream in = held.open()) {
            streams.feed(qemu, in, held.bytes(), LOAD_TIMEOUT);
            return qemu;
        } catch (IOException | StoredStateException e) {
            throw new AgentException(500, "VM '" + spec.name() + "': loading it from memory failed: " + e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- save

    FlushResult flush(String checkpoint, FlushRequest request) throws AgentException, InterruptedException {
        if (request.vm() == null || request.virtualCluster() == null) {
            throw AgentException.badRequest("a flush needs 'vm' and 'virtualCluster'");
        }
        StoredStream.Compression compression;
        try {
            compression = StoredStream.Compression.parse(request.compression());
            CheckpointStore.requireName("virtual cluster", request.virtualCluster());
        } catch (IllegalArgumentException e) {
            throw AgentException.badRequest("flush of VM '" + request.vm() + "': " + e.getMessage());
        }
        Duration timeout = request.writeTimeout() == null ? DEFAULT_WRITE_TIMEOUT : request.writeTimeout();
        StorageLevel from = request.from() == null ? StorageLevel.L0 : request.from();
        if (from == StorageLevel.L2 || from == request.level()) {
            throw AgentException.badRequest("flush of VM '" + request.vm() + "' from " + from + " to " + request.level()
                    + ": a flush goes from L0 (memory) or L1 (this node's disk) to a slower level");
        }
        resolve(request.level(), request.target()); // a bad level or target is refused before anything else
        ShadowRef ref = shadows.shadowOf(checkpoint, request.vm());
        Instant started = Instant.now();
        StoredStream stream;
        StoredStream disk = null;
        // one save per VM at a time: a shadow's QEMU migrates out to one place at once
        synchronized (vmLocks.computeIfAbsent(checkpoint + "/" + request.vm(), k -> new Object())) {
            try (CheckpointStore to = store(request.level(), request.target())) {
                if (from == StorageLevel.L0 && ref.copy() instanceof io.mekha.agent.transfer.HeldStream held) {
                    // a held stream can be read any number of times
                    try (java.io.InputStream in = held.open()) {
                        stream = streams.saveStream(in, request.vm(), to, request.virtualCluster(), checkpoint, compression, timeout);
                    }
                    if (ref.cutDisk() != null) {
                        // the pod's overlay as it was at the cut, whole: its backing image is the containerDisk in the pod
                        disk = streams.saveFile(ref.cutDisk(), to, request.virtualCluster(), checkpoint, diskFileName(request.vm()),
                                request.vm(), timeout);
                    }
                } else if (from == StorageLevel.L0) {
                    QemuVm shadow = ((io.mekha.agent.transfer.ShadowCopy) ref.copy()).qemu();
                    if (!shadow.isAlive()) {
                        throw AgentException.conflict("checkpoint " + checkpoint + ": the shadow of VM '" + request.vm()
                                + "' is gone; save from L1 instead");
                    }
                    if (ref.streamedTo() != null) {
                        throw AgentException.conflict("checkpoint " + checkpoint + ": the in-memory copy of VM '" + request.vm()
                                + "' on node " + node + " was already streamed to " + ref.streamedTo()
                                + " and QEMU streams a paused VM out only once; copy from L1, or save the copy held elsewhere");
                    }
                    stream = streams.save(shadow, to, request.virtualCluster(), checkpoint, compression, timeout);
                    ref.markStreamed().accept(request.level().name());
                    if (ref.cutDisk() != null) {
                        disk = saveDisk(ref.cutDisk(), shadow.spec(), to, request.virtualCluster(), checkpoint, timeout);
                    }
                } else {
                    if (request.stream() == null) {
                        throw AgentException.badRequest("a flush from L1 needs 'stream': the level-1 file, size and checksum to copy");
                    }
                    try (CheckpointStore l1 = store(StorageLevel.L1, null)) {
                        stream = streams.copy(l1, to, request.virtualCluster(), checkpoint, request.stream(), request.vm(), timeout);
                        if (request.disk() != null) {
                            disk = streams.copy(l1, to, request.virtualCluster(), checkpoint, request.disk(), request.vm(), timeout);
                        }
                    }
                }
            } catch (StoredStateException e) {
                LOG.errorf("checkpoint %s: %s", checkpoint, e.getMessage());
                throw new AgentException(507, e.getMessage(), e);
            } catch (IOException e) {
                throw new AgentException(500, "checkpoint " + checkpoint + ": " + e.getMessage(), e);
            }
        }
        Instant finished = Instant.now();
        LOG.infof("checkpoint %s: VM '%s' saved to %s (%d bytes) in %d ms", checkpoint, request.vm(), request.level(), stream.bytes(),
                Duration.between(started, finished).toMillis());
        String target = request.level() == StorageLevel.L1 ? "node " + node + " " + level1 : request.target().describe();
        return new FlushResult(request.vm(), node, request.level(), target, stream, disk, ref.spec(), ref.accelerator().name(),
                started, finished);
    }

    /**
     * Saves a VM's disk at the cut: everything written above its base image, in one qcow2 image
     * whose backing file is the base (it reads frozen images only, so the running VM is never touched).
     */
    private StoredStream saveDisk(Path cutDisk, io.mekha.agent.runtime.VmSpec spec, CheckpointStore to, String vc, String checkpoint,
                                  Duration timeout) throws StoredStateException, InterruptedException {
        Path flat = staging.resolve("save-" + System.nanoTime() + ".qcow2");
        try {
            Files.createDirectories(staging);
            Path base = spec.disk().toAbsolutePath();
            // a copy of the frozen top image, rebased (safe mode) onto the base: every cluster the chain between them
            // holds is copied in. (qemu-img convert -B loses the middle layers when the top one is empty.)
            Files.copy(cutDisk, flat);
            qemuImg.run(List.of("rebase", "-U", "-f", "qcow2", "-b", base.toString(), "-F", imageFormat(base), flat.toString()));
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

    private String imageFormat(Path image) throws IOException, InterruptedException {
        return qemuImg.info(image).path("format").asText("qcow2");
    }

    void publishManifest(PublishManifestRequest request) throws AgentException {
        CheckpointManifest manifest = request.manifest();
        try {
            manifest.validate();
        } catch (IllegalArgumentException e) {
            throw AgentException.badRequest("manifest: " + e.getMessage());
        }
        try (CheckpointStore store = store(request.level(), request.target())) {
            store.publishManifest(manifest.virtualCluster(), manifest.checkpoint(), json.writerWithDefaultPrettyPrinter().writeValueAsBytes(manifest));
        } catch (IOException e) {
            throw new AgentException(507, "publishing the manifest of checkpoint " + manifest.checkpoint() + " at " + request.level()
                    + " failed: " + e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- find, delete

    Optional<CheckpointManifest> readManifest(StoredRequest request) throws AgentException {
        try (CheckpointStore store = store(request.level(), request.target())) {
            return read(store, request.virtualCluster(), request.checkpoint());
        } catch (IOException e) {
            throw new AgentException(500, e.getMessage(), e);
        }
    }

    List<StoredCheckpoint> list(StoredRequest request) throws AgentException {
        List<StoredCheckpoint> found = new ArrayList<>();
        try (CheckpointStore store = store(request.level(), request.target())) {
            for (String checkpoint : store.checkpoints(request.virtualCluster())) {
                try {
                    Optional<CheckpointManifest> manifest = read(store, request.virtualCluster(), checkpoint);
                    found.add(new StoredCheckpoint(checkpoint, manifest.orElse(null), manifest.isPresent() ? null : "no manifest: incomplete"));
                } catch (AgentException e) {
                    found.add(new StoredCheckpoint(checkpoint, null, e.getMessage()));
                }
            }
        } catch (IOException e) {
            throw new AgentException(500, e.getMessage(), e);
        }
        return found;
    }

    void delete(StoredRequest request) throws AgentException {
        try (CheckpointStore store = store(request.level(), request.target())) {
            store.delete(request.virtualCluster(), request.checkpoint());
            LOG.infof("checkpoint %s of %s deleted from %s on node %s", request.checkpoint(), request.virtualCluster(), request.level(), node);
        } catch (IOException | IllegalArgumentException e) {
            throw new AgentException(500, "deleting checkpoint " + request.checkpoint() + " at " + request.level() + ": " + e.getMessage(), e);
        }
    }

    private Optional<CheckpointManifest> read(CheckpointStore store, String vc, String checkpoint) throws AgentException, IOException {
        Optional<byte[]> bytes = store.readManifest(vc, checkpoint);
        if (bytes.isEmpty()) {
            return Optional.empty();
        }
        try {
            CheckpointManifest manifest = json.readValue(bytes.get(), CheckpointManifest.class);
            manifest.validate();
            return Optional.of(manifest);
        } catch (IOException | IllegalArgumentException e) {
            throw AgentException.conflict(store.locate(vc, checkpoint, CheckpointManifest.FILE)
                    + " is unreadable: " + e.getMessage());
        }
    }

    // ---------------------------------------------------------------- verify, load

    /** Reads every named VM's stream whole and checks it against the manifest; starts nothing. */
    List<StoredVmResult> verify(StoredVmsRequest request) throws AgentException {
        CheckpointManifest manifest = requireManifest(request);
        List<StoredVmResult> results = new ArrayList<>();
        try (CheckpointStore store = store(request.level(), request.target())) {
            for (String vm : request.vms()) {
                CheckpointManifest.VmEntry entry = entry(manifest, vm);
                try {
                    for (StoredStream file : entry.disk() == null ? List.of(entry.stream()) : List.of(entry.stream(), entry.disk())) {
                        if (request.level() == StorageLevel.L2 && request.target() instanceof StorageTarget.S3) {
                            streams.stage(store, manifest.virtualCluster(), manifest.checkpoint(), file, vm, stagedFile(manifest, file));
                        } else {
                            streams.verify(store, manifest.virtualCluster(), manifest.checkpoint(), file, vm);
                        }
                    }
                    if (entry.disk() != null && runtime.baseImagesOnNode() && !Files.exists(entry.spec().disk())) {
                        throw new StoredStateException("VM '" + vm + "': its base disk image " + entry.spec().disk() + " is missing on node " + node);
                    }
                    results.add(new StoredVmResult(vm, node, true, null));
                } catch (StoredStateException e) {
                    results.add(new StoredVmResult(vm, node, false, e.getMessage()));
                }
            }
        } catch (IOException e) {
            throw new AgentException(500, e.getMessage(), e);
        }
        return results;
    }

    /**
     * Starts a QEMU per named VM waiting for incoming state and feeds it the stored stream; they
     * stay paused until the restart. On any failure every QEMU this call started is stopped.
     */
    List<StoredVmResult> load(StoredVmsRequest request) throws AgentException, InterruptedException {
        CheckpointManifest manifest = requireManifest(request);
        String checkpoint = manifest.checkpoint();
        if (loaded.containsKey(checkpoint)) {
            throw AgentException.conflict("checkpoint " + checkpoint + " is already loaded on node " + node + "; restart or drop it first");
        }
        List<LoadedVm> started = new ArrayList<>();
        try (CheckpointStore store = store(request.level(), request.target())) {
            for (String vm : request.vms()) {
                CheckpointManifest.VmEntry entry = entry(manifest, vm);
                Path disk = entry.disk() == null ? null : restoreDisk(store, manifest, entry);
                QemuVm qemu = runtime.startIncoming(entry.spec(), Accelerator.parse(entry.accelerator()), disk);
                started.add(new LoadedVm(entry, qemu, manifest.timePolicy()));
                Path staged = stagedFile(manifest, entry.stream());
                try (InputStream in = Files.exists(staged) ? Files.newInputStream(staged)
                        : store.open(manifest.virtualCluster(), checkpoint, entry.stream().file())) {
                    streams.load(qemu, in, entry.stream(), LOAD_TIMEOUT);
                } finally {
                    Files.deleteIfExists(staged);
                }
            }
        } catch (StoredStateException | VmStartException | IOException e) {
            started.forEach(l -> l.qemu().kill());
            throw new AgentException(500, "loading checkpoint " + checkpoint + " from " + request.level() + " on node " + node
                    + " failed, nothing started: " + e.getMessage(), e);
        }
        loaded.put(checkpoint, started);
        LOG.infof("checkpoint %s: %d VM(s) loaded from %s on node %s, paused until the restart", checkpoint, started.size(),
                request.level(), node);
        return started.stream().map(l -> new StoredVmResult(l.entry().name(), node, true, null)).toList();
    }

    /** Hands over the loaded VMs for the restart (they leave this registry). */
    List<LoadedVm> takeLoaded(String checkpoint) throws AgentException {
        List<LoadedVm> vms = loaded.remove(checkpoint);
        if (vms == null) {
            throw AgentException.conflict("checkpoint " + checkpoint + " is not loaded from storage on node " + node + "; load it first");
        }
        return vms;
    }

    /** Stops QEMUs loaded for a restart that will not happen (another node failed). */
    void dropLoaded(String checkpoint) {
        List<LoadedVm> vms = loaded.remove(checkpoint);
        if (vms != null) {
            vms.forEach(l -> l.qemu().kill());
        }
    }

    private static CheckpointManifest requireManifest(StoredVmsRequest request) throws AgentException {
        if (request.manifest() == null || request.vms() == null || request.vms().isEmpty()) {
            throw AgentException.badRequest("the request needs the checkpoint's 'manifest' and the 'vms' to act on");
        }
        try {
            request.manifest().validate();
        } catch (IllegalArgumentException e) {
            throw AgentException.badRequest("manifest: " + e.getMessage());
        }
        return request.manifest();
    }

    private static CheckpointManifest.VmEntry entry(CheckpointManifest manifest, String vm) throws AgentException {
        return manifest.vm(vm).orElseThrow(() -> AgentException.badRequest("checkpoint " + manifest.checkpoint() + " has no VM '" + vm + "'"));
    }

    private Path stagedFile(CheckpointManifest manifest, StoredStream file) {
        return staging.resolve(manifest.virtualCluster()).resolve(manifest.checkpoint()).resolve(file.file());
    }

    /**
     * Puts a VM's disk at the cut where its restarted QEMU's overlay can sit on it: a file of its own
     * per restart (the restarted VM writes only to its overlay, so this file stays as it was at the cut).
     */
    private Path restoreDisk(CheckpointStore store, CheckpointManifest manifest, CheckpointManifest.VmEntry entry)
            throws IOException, StoredStateException {
        Path dir = runtime.config().workDir().resolve("restored").resolve(manifest.virtualCluster()).resolve(manifest.checkpoint());
        Files.createDirectories(dir);
        Path target = dir.resolve(entry.name() + "-" + System.nanoTime() + ".disk.qcow2");
        Path staged = stagedFile(manifest, entry.disk());
        if (Files.exists(staged)) {
            Files.move(staged, target);
        } else {
            streams.stage(store, manifest.virtualCluster(), manifest.checkpoint(), entry.disk(), entry.name(), target);
        }
        return target;
    }
}
