package io.mekha.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mekha.agent.api.AgentDtos.PublishManifestRequest;
import io.mekha.agent.api.AgentDtos.StoredCheckpoint;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.Json;
import io.mekha.storage.CheckpointManifest;
import io.mekha.storage.CheckpointStore;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/** The stored checkpoints of a level as this node sees them: manifests published, read and listed; checkpoints deleted. */
final class StoredCatalog {
    private static final Logger LOG = Logger.getLogger(StoredCatalog.class);

    private final String node;
    private final StorageTargets targets;
    private final ObjectMapper json = Json.mapper();

    StoredCatalog(String node, StorageTargets targets) {
        this.node = node;
        this.targets = targets;
    }

    void publish(PublishManifestRequest request) throws AgentException {
        CheckpointManifest manifest = request.manifest();
        if (manifest == null) {
            throw AgentException.invalid("the request needs the 'manifest' to publish");
        }
        try {
            manifest.validate();
        } catch (IllegalArgumentException e) {
            throw AgentException.invalid("manifest: " + e.getMessage());
        }
        try (CheckpointStore store = targets.open(request.level(), request.target())) {
            store.publishManifest(manifest.virtualCluster(), manifest.checkpoint(), json.writerWithDefaultPrettyPrinter().writeValueAsBytes(manifest));
        } catch (IOException e) {
            throw AgentException.noRoom("publishing the manifest of checkpoint " + manifest.checkpoint() + " at " + request.level()
                    + " failed: " + e.getMessage(), e);
        }
    }

    /** The level's complete copy of the checkpoint, or a refusal saying there is none. */
    CheckpointManifest read(StoredRequest request) throws AgentException {
        try (CheckpointStore store = targets.open(request.level(), request.target())) {
            return read(store, request.virtualCluster(), request.checkpoint()).orElseThrow(() -> AgentException.notFound(
                    "no complete checkpoint " + request.checkpoint() + " of " + request.virtualCluster() + " at " + request.level()
                            + " on node " + node));
        } catch (IOException e) {
            throw AgentException.failed(e.getMessage(), e);
        }
    }

    List<StoredCheckpoint> list(StoredRequest request) throws AgentException {
        List<StoredCheckpoint> found = new ArrayList<>();
        try (CheckpointStore store = targets.open(request.level(), request.target())) {
            for (String checkpoint : store.checkpoints(request.virtualCluster())) {
                try {
                    Optional<CheckpointManifest> manifest = read(store, request.virtualCluster(), checkpoint);
                    found.add(new StoredCheckpoint(checkpoint, manifest.orElse(null), manifest.isPresent() ? null : "no manifest: incomplete"));
                } catch (AgentException e) {
                    found.add(new StoredCheckpoint(checkpoint, null, e.getMessage()));
                }
            }
        } catch (IOException e) {
            throw AgentException.failed(e.getMessage(), e);
        }
        return found;
    }

    void delete(StoredRequest request) throws AgentException {
        try (CheckpointStore store = targets.open(request.level(), request.target())) {
            store.delete(request.virtualCluster(), request.checkpoint());
            LOG.infof("checkpoint %s of %s deleted from %s on node %s", request.checkpoint(), request.virtualCluster(), request.level(), node);
        } catch (IOException | IllegalArgumentException e) {
            throw AgentException.failed("deleting checkpoint " + request.checkpoint() + " at " + request.level() + ": " + e.getMessage(), e);
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
            throw AgentException.conflict(store.locate(vc, checkpoint, CheckpointManifest.FILE) + " is unreadable: " + e.getMessage());
        }
    }
}
