package io.mekha.protocol;

import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mekha.agent.api.AgentDtos.AbortRequest;
import io.mekha.agent.api.AgentDtos.AtRequest;
import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.ErrorReply;
import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.FlushResult;
import io.mekha.agent.api.AgentDtos.PartnerShadow;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.AgentDtos.PublishManifestRequest;
import io.mekha.agent.api.AgentDtos.ReplicateRequest;
import io.mekha.agent.api.AgentDtos.RestartRequest;
import io.mekha.agent.api.AgentDtos.RestartStatus;
import io.mekha.agent.api.AgentDtos.StartVmRequest;
import io.mekha.agent.api.AgentDtos.StoredCheckpoint;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.AgentDtos.StoredVmResult;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.agent.api.AgentDtos.TimeReply;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.api.ErrorKind;
import io.mekha.agent.api.HttpErrors;
import io.mekha.agent.api.Json;
import io.mekha.model.VmSpec;
import io.mekha.storage.CheckpointManifest;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/** The coordinator's side of the agent API: one agent, over HTTP/JSON, authenticated with a bearer token. */
public final class AgentClient {
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);

    private final String node;
    private final URI base;
    private final String authorization;
    private final Duration timeout;
    private final HttpClient http;
    private final ObjectMapper json = Json.mapper();

    /**
     * @param node the node's name, for messages
     * @param authorization the Authorization header value (e.g. {@code Bearer <token>}), or null to send none
     */
    public AgentClient(String node, URI base, String authorization, Duration timeout) {
        this.node = node;
        this.base = base;
        this.authorization = authorization;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(CONNECT_TIMEOUT).build();
    }

    public String node() {
        return node;
    }

    public URI base() {
        return base;
    }

    public TimeReply time() throws AgentCallException {
        return call("GET", "/v1/time", null, TimeReply.class);
    }

    public List<VmInfo> vms() throws AgentCallException {
        return call("GET", "/v1/vms", null, json.getTypeFactory().constructCollectionType(List.class, VmInfo.class), timeout);
    }

    public VmInfo vm(String name) throws AgentCallException {
        return call("GET", "/v1/vms/" + name, null, VmInfo.class);
    }

    public VmInfo startVm(VmSpec spec) throws AgentCallException {
        return call("POST", "/v1/vms", new StartVmRequest(spec), json.constructType(VmInfo.class), Duration.ofMinutes(3));
    }

    public void stopVm(String name) throws AgentCallException {
        call("DELETE", "/v1/vms/" + name, null, Void.class);
    }

    /** Runs a command in a VM's guest; waits as long as the command may take. */
    public io.mekha.agent.api.AgentDtos.ExecResult exec(String vm, io.mekha.agent.api.AgentDtos.ExecRequest request)
            throws AgentCallException {
        Duration wait = (request.timeout() == null ? Duration.ofSeconds(60) : request.timeout()).plus(Duration.ofSeconds(30));
        return call("POST", "/v1/vms/" + vm + "/exec", request, json.constructType(io.mekha.agent.api.AgentDtos.ExecResult.class), wait);
    }

    public CheckpointStatus prepare(String id, PrepareRequest request) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/prepare", request, json.constructType(CheckpointStatus.class), Duration.ofMinutes(2));
    }

    public CheckpointStatus status(String id) throws AgentCallException {
        return call("GET", "/v1/checkpoints/" + id, null, CheckpointStatus.class);
    }

    public CheckpointStatus suspend(String id, Instant at) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/suspend", new AtRequest(at), CheckpointStatus.class);
    }

    public CheckpointStatus resume(String id, Instant at) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/resume", new AtRequest(at), CheckpointStatus.class);
    }

    public CheckpointStatus abort(String id, String reason) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/abort", new AbortRequest(reason), CheckpointStatus.class);
    }

    public void discard(String id) throws AgentCallException {
        call("DELETE", "/v1/checkpoints/" + id, null, Void.class);
    }

    public RestartStatus restart(String id, RestartRequest request) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/restart", request, RestartStatus.class);
    }

    /** Loads the VMs' level-0 streams into their waiting QEMUs (a no-op for shadows); returns the VMs fed. Waits as long as that takes. */
    public List<String> loadLevel0(String id, List<String> vms, Duration callTimeout) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/load", new io.mekha.agent.api.AgentDtos.LoadLevel0Request(vms),
                json.getTypeFactory().constructCollectionType(List.class, String.class), callTimeout);
    }

    public RestartStatus restartStatus(String id) throws AgentCallException {
        return call("GET", "/v1/checkpoints/" + id + "/restart", null, RestartStatus.class);
    }

    /** Saves one VM of a checkpoint to a level; waits as long as the write may take. */
    public FlushResult flush(String id, FlushRequest request, Duration callTimeout) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/flush", request, json.constructType(FlushResult.class), callTimeout);
    }

    public void publishManifest(PublishManifestRequest request) throws AgentCallException {
        call("POST", "/v1/stored/manifest", request, json.constructType(Void.class), Duration.ofMinutes(1));
    }

    public CheckpointManifest readManifest(StoredRequest request) throws AgentCallException {
        return call("POST", "/v1/stored/manifest/read", request, json.constructType(CheckpointManifest.class), Duration.ofMinutes(1));
    }

    public List<StoredCheckpoint> listStored(StoredRequest request) throws AgentCallException {
        return call("POST", "/v1/stored/list", request,
                json.getTypeFactory().constructCollectionType(List.class, StoredCheckpoint.class), Duration.ofMinutes(1));
    }

    public void deleteStored(StoredRequest request) throws AgentCallException {
        call("POST", "/v1/stored/delete", request, json.constructType(Void.class), Duration.ofMinutes(5));
    }

    public List<StoredVmResult> verifyStored(StoredVmsRequest request) throws AgentCallException {
        return call("POST", "/v1/stored/verify", request,
                json.getTypeFactory().constructCollectionType(List.class, StoredVmResult.class), Duration.ofMinutes(30));
    }

    public List<StoredVmResult> loadStored(StoredVmsRequest request) throws AgentCallException {
        return call("POST", "/v1/stored/load", request,
                json.getTypeFactory().constructCollectionType(List.class, StoredVmResult.class), Duration.ofMinutes(30));
    }

    public PartnerShadow hostPartner(String id, PartnerShadowRequest request) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/partners", request, json.constructType(PartnerShadow.class), Duration.ofMinutes(2));
    }

    public List<PartnerShadow> partners(String id) throws AgentCallException {
        return call("GET", "/v1/checkpoints/" + id + "/partners", null,
                json.getTypeFactory().constructCollectionType(List.class, PartnerShadow.class), timeout);
    }

    public void dropPartners(String id) throws AgentCallException {
        call("DELETE", "/v1/checkpoints/" + id + "/partners", null, Void.class);
    }

    public void replicate(String id, ReplicateRequest request) throws AgentCallException {
        call("POST", "/v1/checkpoints/" + id + "/replicate", request, json.constructType(Void.class), Duration.ofMinutes(15));
    }

    public void dropLoaded(String id) throws AgentCallException {
        call("DELETE", "/v1/checkpoints/" + id + "/loaded", null, Void.class);
    }

    private <T> T call(String method, String path, Object body, Class<T> type) throws AgentCallException {
        return call(method, path, body, json.getTypeFactory().constructType(type), timeout);
    }

    private <T> T call(String method, String path, Object body, JavaType type, Duration callTimeout) throws AgentCallException {
        String what = method + " " + path + " on agent " + node + " (" + base + ")";
        HttpResponse<byte[]> response;
        try {
            HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path)).timeout(callTimeout)
                    .header("Accept", "application/json");
            if (authorization != null) {
                request.header("Authorization", authorization);
            }
            if (body != null) {
                request.header("Content-Type", "application/json")
                        .method(method, HttpRequest.BodyPublishers.ofByteArray(json.writeValueAsBytes(body)));
            } else {
                request.method(method, HttpRequest.BodyPublishers.noBody());
            }
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            throw AgentCallException.unreachable(what + ": agent unreachable: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw AgentCallException.unreachable(what + ": interrupted", e);
        }
        int status = response.statusCode();
        if (status >= 300) {
            String message;
            ErrorKind kind = null;
            try {
                ErrorReply reply = json.readValue(response.body(), ErrorReply.class);
                message = reply.error();
                kind = reply.kind();
            } catch (IOException e) {
                message = new String(response.body());
            }
            // the one place a status becomes a kind on this side: an answer that did not say its kind (a proxy's page)
            throw new AgentCallException(kind != null ? kind : HttpErrors.kind(status), status, message + " [" + status + " from " + what + "]", null);
        }
        if (type.getRawClass() == Void.class || response.body().length == 0) {
            return null;
        }
        try {
            return json.readValue(response.body(), type);
        } catch (IOException e) {
            throw new AgentCallException(ErrorKind.FAILED, status, what + ": unreadable reply: " + e.getMessage(), e);
        }
    }
}
