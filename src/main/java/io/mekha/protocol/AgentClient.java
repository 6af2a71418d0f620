package io.mekha.protocol;

import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mekha.agent.api.AgentDtos.AbortRequest;
import io.mekha.agent.api.AgentDtos.AtRequest;
import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.ErrorReply;
import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.FlushResult;
import io.mekha.agent.api.AgentDtos.PartnerCopyInfo;
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
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * The coordinator's side of the agent API: one agent, over HTTP/JSON, authenticated with a bearer token. Calls go
 * over the JDK's pooled keep-alive connections ({@link HttpURLConnection}): measured on loopback here, a call there
 * takes a third of what {@code java.net.http.HttpClient} takes (0.3 ms against 1 ms at the median), and every
 * rendezvous lead and barrier is paid in such calls.
 */
public final class AgentClient {
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);

    static {
        // a POST the connection broke under is not sent again by the JDK on its own: prepare, suspend and resume are not
        // idempotent, and the caller decides what a failed call means
        if (System.getProperty("sun.net.http.retryPost") == null) {
            System.setProperty("sun.net.http.retryPost", "false");
        }
    }


    private final String node;
    private final URI base;
    private final String authorization;
    private final Duration timeout;
    private final javax.net.ssl.SSLSocketFactory tls;
    private final ObjectMapper json = Json.mapper();

    /**
     * @param node the node's name, for messages
     * @param authorization the Authorization header value (e.g. {@code Bearer <token>}), or null to send none
     */
    public AgentClient(String node, URI base, String authorization, Duration timeout) {
        this(node, base, authorization, timeout, null);
    }

    /**
     * Over mutual TLS when {@code tls} is given (a context whose trust accepts only this node's agent, {@link
     * io.mekha.tls.PeerTrust#agentOf}): {@code base} must then be {@code https}, and no call, nor its token, goes to a
     * peer that fails that check.
     */
    public AgentClient(String node, URI base, String authorization, Duration timeout, javax.net.ssl.SSLSocketFactory tls) {
        if (tls != null && !"https".equals(base.getScheme())) {
            throw new IllegalArgumentException("the agent on node " + node + " is to be called over TLS, but its address is " + base);
        }
        this.node = node;
        this.base = base;
        this.authorization = authorization;
        this.timeout = timeout;
        this.tls = tls;
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

    /** Names the launcher pods of the VMs about to be checkpointed or restored (KubeVirt): only the QEMU in each is that VM. */
    public void expectPods(java.util.Map<String, io.mekha.model.PodIdentity> pods) throws AgentCallException {
        call("PUT", "/v1/pods", new io.mekha.agent.api.AgentDtos.PodsRequest(pods), Void.class);
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

    /** The checkpoint's status once a VM changed phase after {@code version}, or after {@code wait}: a long poll. */
    public CheckpointStatus awaitStatus(String id, long version, Duration wait) throws AgentCallException {
        return call("GET", "/v1/checkpoints/" + id + "?after=" + version + "&waitMs=" + wait.toMillis(), null,
                json.constructType(CheckpointStatus.class), wait.plus(timeout));
    }

    /** The checkpoint's status once every VM is in {@code phase} (or one failed or was aborted), or after {@code wait}: a long poll. */
    public CheckpointStatus awaitPhase(String id, io.mekha.agent.api.VmPhase phase, Duration wait) throws AgentCallException {
        return call("GET", "/v1/checkpoints/" + id + "?until=" + phase.name() + "&waitMs=" + wait.toMillis(), null,
                json.constructType(CheckpointStatus.class), wait.plus(timeout));
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

    /** Gives a restart prepared by {@link #restart} without an instant its rendezvous instant Tr (the agent's clock). */
    public RestartStatus armRestart(String id, Instant at) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/arm", new AtRequest(at), RestartStatus.class);
    }

    /** Calls a restart off: the agent's VMs whose Tr has not come stay as they were. */
    public RestartStatus callOffRestart(String id, String why) throws AgentCallException {
        return call("DELETE", "/v1/checkpoints/" + id + "/restart?reason=" + java.net.URLEncoder.encode(why, java.nio.charset.StandardCharsets.UTF_8),
                null, RestartStatus.class);
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

    /** What the node lends for other nodes' level-0 copies, and what one more could take now. */
    public io.mekha.agent.api.AgentDtos.Level0Room level0Room() throws AgentCallException {
        return call("GET", "/v1/level0", null, io.mekha.agent.api.AgentDtos.Level0Room.class);
    }

    /** Keeps room on this node for a copy of another node's VM, before the checkpoint's cut. */
    public PartnerCopyInfo reservePartner(String id, io.mekha.agent.api.AgentDtos.PartnerReservation request) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/reserve", request, json.constructType(PartnerCopyInfo.class), timeout);
    }

    public PartnerCopyInfo hostPartner(String id, PartnerShadowRequest request) throws AgentCallException {
        return call("POST", "/v1/checkpoints/" + id + "/partners", request, json.constructType(PartnerCopyInfo.class), Duration.ofMinutes(2));
    }

    /** How far the node's long transfers of checkpoint {@code id} have got: flushes, copies between levels, loads for a restore. */
    public List<io.mekha.agent.api.AgentDtos.TransferProgress> progress(String id) throws AgentCallException {
        return call("GET", "/v1/checkpoints/" + id + "/progress", null,
                json.getTypeFactory().constructCollectionType(List.class, io.mekha.agent.api.AgentDtos.TransferProgress.class), timeout);
    }

    public List<PartnerCopyInfo> partners(String id) throws AgentCallException {
        return call("GET", "/v1/checkpoints/" + id + "/partners", null,
                json.getTypeFactory().constructCollectionType(List.class, PartnerCopyInfo.class), timeout);
    }

    public void dropPartners(String id) throws AgentCallException {
        call("DELETE", "/v1/checkpoints/" + id + "/partners", null, Void.class);
    }

    /** Lets go of the node's copy of {@code vm} of checkpoint {@code id} (or the room kept for it); its other copies stay. */
    public void dropPartner(String id, String vm) throws AgentCallException {
        call("DELETE", "/v1/checkpoints/" + id + "/partners?vm=" + java.net.URLEncoder.encode(vm, java.nio.charset.StandardCharsets.UTF_8), null,
                Void.class);
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
        HttpURLConnection connection;
        try {
            connection = open(method, path, callTimeout);
            if (body != null) {
                byte[] bytes = bodyBytes(body);
                connection.setDoOutput(true);
                connection.setRequestProperty("Content-Type", "application/json");
                try (OutputStream out = connection.getOutputStream()) {
                    out.write(bytes);
                }
            }
        } catch (IOException e) {
            throw unreachable(what, e);
        }
        return finish(connection, what, type);
    }

    /**
     * Opens a rendezvous call ({@code action} is {@code suspend} or {@code resume}, {@code query} may be empty) whose
     * instant is written later ({@link ArmedCall#send}): the request line and headers go now, the body later, so the
     * agent waits on it with the request already parsed and authenticated.
     */
    ArmedCall arm(String id, String action, String query, Duration callTimeout) throws AgentCallException {
        String path = "/v1/checkpoints/" + id + "/" + action + query;
        String what = "POST " + path + " (armed) on agent " + node + " (" + base + ")";
        try {
            HttpURLConnection connection = open("POST", path, callTimeout);
            connection.setDoOutput(true);
            connection.setRequestProperty("Content-Type", "application/json");
            // a body of known length, padded: the instant then goes out as one write (chunked, it took two, and twice the time)
            connection.setFixedLengthStreamingMode(ArmedCall.BODY_LENGTH);
            OutputStream body = connection.getOutputStream(); // sends the request line and headers
            return new ArmedCall(this, what, connection, body);
        } catch (IOException e) {
            throw unreachable(what, e);
        }
    }

    byte[] bodyBytes(Object body) throws AgentCallException {
        try {
            return json.writeValueAsBytes(body);
        } catch (IOException e) {
            throw new AgentCallException(ErrorKind.INVALID_REQUEST, 0, "cannot write a request to agent " + node + ": " + e.getMessage(), e);
        }
    }

    private HttpURLConnection open(String method, String path, Duration callTimeout) throws IOException {
        HttpURLConnection connection = (HttpURLConnection) base.resolve(path).toURL().openConnection();
        if (connection instanceof javax.net.ssl.HttpsURLConnection https) {
            if (tls == null) {
                throw new IOException("an https agent needs the agent API's TLS settings (the operator's CA and client certificate)");
            }
            https.setSSLSocketFactory(tls);
            // who the peer is was checked in the handshake (its certificate names this node's agent); no certificate names a pod IP
            https.setHostnameVerifier((host, session) -> true);
        }
        connection.setConnectTimeout((int) CONNECT_TIMEOUT.toMillis());
        connection.setReadTimeout((int) Math.min(Integer.MAX_VALUE, Math.max(1, callTimeout.toMillis())));
        connection.setRequestMethod(method);
        connection.setRequestProperty("Accept", "application/json");
        if (authorization != null) {
            connection.setRequestProperty("Authorization", authorization);
        }
        return connection;
    }

    private AgentCallException unreachable(String what, IOException e) {
        if (Thread.currentThread().isInterrupted()) {
            return AgentCallException.unreachable(what + ": interrupted", e);
        }
        return AgentCallException.unreachable(what + ": agent unreachable: " + e, e);
    }

    <T> T finish(HttpURLConnection connection, String what, Class<T> type) throws AgentCallException {
        return finish(connection, what, json.getTypeFactory().constructType(type));
    }

    /** Reads a call's answer: the value, or the agent's error as an {@link AgentCallException} of its kind. */
    private <T> T finish(HttpURLConnection connection, String what, JavaType type) throws AgentCallException {
        int status;
        byte[] reply;
        try {
            status = connection.getResponseCode();
            try (InputStream in = status >= 400 ? connection.getErrorStream() : connection.getInputStream()) {
                reply = in == null ? new byte[0] : in.readAllBytes(); // read whole: the connection goes back to the pool
            }
        } catch (IOException e) {
            throw unreachable(what, e);
        }
        if (status >= 300) {
            String message;
            ErrorKind kind = null;
            try {
                ErrorReply error = json.readValue(reply, ErrorReply.class);
                message = error.error();
                kind = error.kind();
            } catch (IOException e) {
                message = new String(reply, java.nio.charset.StandardCharsets.UTF_8);
            }
            // the one place a status becomes a kind on this side: an answer that did not say its kind (a proxy's page)
            throw new AgentCallException(kind != null ? kind : HttpErrors.kind(status), status, message + " [" + status + " from " + what + "]", null);
        }
        if (type.getRawClass() == Void.class || reply.length == 0) {
            return null;
        }
        try {
            return json.readValue(reply, type);
        } catch (IOException e) {
            throw new AgentCallException(ErrorKind.FAILED, status, what + ": unreadable reply: " + e.getMessage(), e);
        }
    }
}
