package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.StoredVmResult;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.agent.storage.StoredStateException;
import io.mekha.agent.storage.TransferMeter;
import io.mekha.agent.storage.VmStateLoader;
import io.mekha.agent.storage.VmStateStreams;
import io.mekha.model.VmSpec;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * Getting a checkpoint back into QEMUs on this node, ready for a coordinated restart: stored
 * copies verified whole, then loaded into fresh QEMUs waiting for incoming state (paused until the
 * restart's {@code cont}); streams held in memory fed to the QEMU waiting for them.
 */
final class StoredLoads {
    private static final Logger LOG = Logger.getLogger(StoredLoads.class);
    private static final Duration LOAD_TIMEOUT = Duration.ofMinutes(5);

    /** A VM loaded from storage, paused, waiting for the restart's {@code cont}. */
    /** @param stopLate how long after Ts this VM's guest stopped at the cut (from the manifest; zero where unknown) */
    record LoadedVm(CheckpointManifest.VmEntry entry, QemuVm qemu, String checkpointTimePolicy, java.time.Duration stopLate) {}

    private final String node;
    private final VmRuntime runtime;
    private final StorageTargets targets;
    private final VmStateStreams streams;
    private final VmStateLoader loader = new VmStateLoader();
    private final Path staging;
    private final Map<String, List<LoadedVm>> loaded = new ConcurrentHashMap<>();

    private final Transfers transfers;

    StoredLoads(String node, VmRuntime runtime, StorageTargets targets, VmStateStreams streams, Transfers transfers) {
        this.transfers = transfers;
        this.node = node;
        this.runtime = runtime;
        this.targets = targets;
        this.streams = streams;
        this.staging = runtime.config().workDir().resolve("staging");
    }

    /**
     * Feeds a VM's stream held in memory to the QEMU waiting for it ({@link VmRuntime#startIncoming}: on KubeVirt, the
     * restored VMI's); returns it loaded and paused at the cut.
     */
    QemuVm feedHeld(String checkpoint, io.mekha.agent.level0.HeldState held, VmSpec spec, Accelerator accel)
            throws AgentException, InterruptedException {
        QemuVm qemu;
        try {
            qemu = runtime.startIncoming(spec, accel, held.disk());
        } catch (VmStartException e) {
            throw AgentException.unprocessable(e.getMessage(), e);
        }
        // followed like a load from L1/L2: a restore's progress counts the bytes QEMU has taken
        TransferMeter meter = transfers.open(checkpoint, spec.name(), "load from " + StorageLevel.L0, 1);
        meter.stage("loading into QEMU", held.bytes());
        String failure = "failed";
        try (InputStream in = held.open()) {
            loader.feed(qemu, meter.counting(in), held.bytes(), LOAD_TIMEOUT);
            failure = null;
            return qemu;
        } catch (IOException | StoredStateException e) {
            failure = e.getMessage();
            throw AgentException.failed("VM '" + spec.name() + "': loading it from memory failed: " + e.getMessage(), e);
        } finally {
            meter.finished(failure);
        }
    }

    /** Reads every named VM's stream whole and checks it against the manifest; starts nothing. */
    List<StoredVmResult> verify(StoredVmsRequest request) throws AgentException {
        CheckpointManifest manifest = requireManifest(request);
        List<StoredVmResult> results = new ArrayList<>();
        try (CheckpointStore store = targets.open(request.level(), request.target())) {
            for (String vm : request.vms()) {
                CheckpointManifest.VmEntry entry = entry(manifest, vm);
                TransferMeter meter = transfers.open(manifest.checkpoint(), vm, "verify at " + request.level(), entry.disk() == null ? 1 : 2);
                VmStateStreams streams = this.streams.metered(meter);
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
                    meter.finished(null);
                } catch (StoredStateException e) {
                    results.add(new StoredVmResult(vm, node, false, e.getMessage()));
                    meter.finished(e.getMessage());
                }
            }
        } catch (IOException e) {
            throw AgentException.failed(e.getMessage(), e);
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
        try (CheckpointStore store = targets.open(request.level(), request.target())) {
            for (String vm : request.vms()) {
                CheckpointManifest.VmEntry entry = entry(manifest, vm);
                Path disk = entry.disk() == null ? null : restoreDisk(store, manifest, entry);
                QemuVm qemu = runtime.startIncoming(entry.spec(), Accelerator.parse(entry.accelerator()), disk);
                started.add(new LoadedVm(entry, qemu, manifest.timePolicy(), manifest.stopLate(entry)));
                Path staged = stagedFile(manifest, entry.stream());
                TransferMeter meter = transfers.open(checkpoint, vm, "load from " + request.level(), 1);
                meter.stage("loading into QEMU", entry.stream().bytes());
                String failure = "failed";
                try (InputStream in = Files.exists(staged) ? Files.newInputStream(staged)
                        : store.open(manifest.virtualCluster(), checkpoint, entry.stream().file())) {
                    loader.load(qemu, meter.counting(in), entry.stream(), LOAD_TIMEOUT);
                    failure = null;
                } catch (StoredStateException | IOException e) {
                    failure = e.getMessage();
                    throw e;
                } finally {
                    meter.finished(failure);
                    Files.deleteIfExists(staged);
                }
            }
        } catch (StoredStateException | VmStartException | IOException e) {
            started.forEach(l -> l.qemu().kill());
            throw AgentException.failed("loading checkpoint " + checkpoint + " from " + request.level() + " on node " + node
                    + " failed, nothing started: " + e.getMessage(), e);
        }
        loaded.put(checkpoint, started);
        LOG.infof("checkpoint %s: %d VM(s) loaded from %s on node %s, paused until the restart", checkpoint, started.size(),
                request.level(), node);
        return started.stream().map(l -> new StoredVmResult(l.entry().name(), node, true, null)).toList();
    }

    /** Hands over the loaded VMs for the restart (they leave this registry). */
    List<LoadedVm> take(String checkpoint) throws AgentException {
        List<LoadedVm> vms = loaded.remove(checkpoint);
        if (vms == null) {
            throw AgentException.conflict("checkpoint " + checkpoint + " is not loaded from storage on node " + node + "; load it first");
        }
        return vms;
    }

    /** Stops QEMUs loaded for a restart that will not happen (another node failed). */
    boolean drop(String checkpoint) {
        List<LoadedVm> vms = loaded.remove(checkpoint);
        if (vms != null) {
            vms.forEach(l -> l.qemu().kill());
        }
        return vms != null;
    }

    private static CheckpointManifest requireManifest(StoredVmsRequest request) throws AgentException {
        if (request.manifest() == null || request.vms() == null || request.vms().isEmpty()) {
            throw AgentException.invalid("the request needs the checkpoint's 'manifest' and the 'vms' to act on");
        }
        try {
            request.manifest().validate();
        } catch (IllegalArgumentException e) {
            throw AgentException.invalid("manifest: " + e.getMessage());
        }
        return request.manifest();
    }

    private static CheckpointManifest.VmEntry entry(CheckpointManifest manifest, String vm) throws AgentException {
        return manifest.vm(vm).orElseThrow(() -> AgentException.invalid("checkpoint " + manifest.checkpoint() + " has no VM '" + vm + "'"));
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
