package io.mekha.agent.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.mekha.agent.AgentException;
import io.mekha.agent.AgentService;
import io.mekha.agent.api.AgentDtos.AbortRequest;
import io.mekha.agent.api.AgentDtos.AtRequest;
import io.mekha.agent.api.AgentDtos.ErrorReply;
import io.mekha.agent.api.AgentDtos.FlushRequest;
import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.AgentDtos.PrepareRequest;
import io.mekha.agent.api.AgentDtos.PublishManifestRequest;
import io.mekha.agent.api.AgentDtos.ReplicateRequest;
import io.mekha.agent.api.AgentDtos.RestartRequest;
import io.mekha.agent.api.AgentDtos.StartVmRequest;
import io.mekha.agent.api.AgentDtos.StoredRequest;
import io.mekha.agent.api.AgentDtos.StoredVmsRequest;
import io.mekha.agent.api.AgentDtos.TimeReply;
import io.mekha.agent.api.ErrorKind;
import io.mekha.agent.api.HttpErrors;
import io.mekha.agent.api.Json;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;

/**
 * The agent's HTTP/JSON API, the wire between coordinator and agent. Every request must carry
 * the agent's bearer token; errors come back as {@code {"error": "...", "kind": "..."}} with the
 * HTTP status of their {@link ErrorKind} ({@link HttpErrors}: 400 bad request, 401 unauthenticated,
 * 404 unknown, 409 conflict, 422 cannot be done here, 507 no room, 500 failure).
 */
public final class AgentHttpServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(AgentHttpServer.class);
    private static final Pattern VM = Pattern.compile("^/v1/vms/([^/]+)$");
    private static final Pattern VM_EXEC = Pattern.compile("^/v1/vms/([^/]+)/exec$");
    private static final Pattern CHECKPOINT = Pattern.compile("^/v1/checkpoints/([^/]+)(?:/([a-z]+))?$");
    private static final int MAX_BODY = 1 << 20;

    static {
        // the JDK's server writes a reply's headers and body apart; with Nagle's algorithm the body then waits for the
        // caller's delayed ACK (40 ms on Linux): every rendezvous call would arrive that late
        if (System.getProperty("sun.net.httpserver.nodelay") == null) {
            System.setProperty("sun.net.httpserver.nodelay", "true");
        }
    }

    private final AgentService agent;
    private final AgentAuthenticator auth;
    private final boolean tls;
    private final HttpServer server;
    private final ExecutorService executor = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "agent-http");
        t.setDaemon(true);
        return t;
    });
    private final ObjectMapper json = Json.mapper();
    private final java.util.concurrent.atomic.AtomicLongArray answered = new java.util.concurrent.atomic.AtomicLongArray(5);
    private final java.util.concurrent.atomic.AtomicLong refusals = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();

    public AgentHttpServer(AgentService agent, AgentAuthenticator auth, InetSocketAddress listen) throws IOException {
        this(agent, auth, listen, null);
    }

    /**
     * Over mutual TLS when {@code tls} is given ({@link io.mekha.tls.TlsContexts}: this agent's certificate, and trust
     * in the operator's alone, {@link io.mekha.tls.PeerTrust#operator}). A client certificate is asked for in every
     * handshake and required for every call but the probes' two (the kubelet has none); one from elsewhere ends the
     * handshake. The bearer token is checked as well.
     */
    public AgentHttpServer(AgentService agent, AgentAuthenticator auth, InetSocketAddress listen, javax.net.ssl.SSLContext tls)
            throws IOException {
        this.agent = agent;
        this.auth = auth;
        this.tls = tls != null;
        if (tls != null) {
            com.sun.net.httpserver.HttpsServer https = com.sun.net.httpserver.HttpsServer.create(listen, 64);
            https.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(tls) {
                @Override
                public void configure(com.sun.net.httpserver.HttpsParameters params) {
                    javax.net.ssl.SSLParameters parameters = tls.getDefaultSSLParameters();
                    parameters.setProtocols(io.mekha.tls.TlsContexts.PROTOCOLS);
                    parameters.setWantClientAuth(true);
                    params.setSSLParameters(parameters);
                }
            });
            this.server = https;
        } else {
            this.server = HttpServer.create(listen, 64);
        }
        server.createContext("/", this::handle);
        server.setExecutor(executor);
    }

    public AgentHttpServer start() {
        server.start();
        return this;
    }

    /** Requests answered so far, whatever their status (the benchmarks' calls per second). */
    public long requestsAnswered() {
        long total = 0;
        for (int i = 0; i < answered.length(); i++) {
            total += answered.get(i);
        }
        return total;
    }

    /** Requests being handled now (a long poll, a rendezvous call waiting for its instant). */
    public int requestsInFlight() {
        return inFlight.get();
    }

    public URI uri() {
        InetSocketAddress a = server.getAddress();
        return URI.create((tls ? "https://" : "http://") + a.getHostString() + ":" + a.getPort());
    }

    private void handle(HttpExchange exchange) throws IOException {
        inFlight.incrementAndGet();
        try {
            answer(exchange);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    private void answer(HttpExchange exchange) throws IOException {
        try (exchange) {
            String path = exchange.getRequestURI().getPath();
            // the kubelet's probes and Prometheus come without credentials; these two reveal no VM and change nothing
            if (exchange.getRequestMethod().equals("GET") && path.equals("/healthz")) {
                plain(exchange, 200, "ok\n");
                return;
            }
            if (exchange.getRequestMethod().equals("GET") && path.equals("/metrics")) {
                plain(exchange, 200, metrics());
                return;
            }
            AgentAuthenticator.Verdict verdict = tls && !clientCertified(exchange)
                    ? AgentAuthenticator.Verdict.refuse(ErrorKind.UNAUTHENTICATED,
                            "needs the operator's client certificate (mutual TLS, from the operator's CA): this call came without one")
                    : auth.check(exchange.getRequestHeaders().getFirst("Authorization"));
            if (!verdict.allowed()) {
                refusals.incrementAndGet();
                if (verdict.refusal() == ErrorKind.UNAUTHENTICATED) {
                    exchange.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"mekha-agent\"");
                }
                LOG.warnf("refused %s %s from %s: %s", exchange.getRequestMethod(), exchange.getRequestURI().getPath(),
                        exchange.getRemoteAddress(), verdict.problem());
                String kind = switch (verdict.refusal()) {
                    case UNAUTHENTICATED -> "unauthenticated";
                    case FORBIDDEN -> "forbidden";
                    default -> "cannot authenticate now";
                };
                error(exchange, verdict.refusal(), kind + ": this Mekha agent (node " + agent.node() + ") " + verdict.problem());
                return;
            }
            try {
                Object result = route(exchange);
                reply(exchange, result == null ? 204 : 200, result);
            } catch (AgentException e) {
                error(exchange, e.kind(), e.getMessage());
            } catch (JsonProcessingException e) {
                error(exchange, ErrorKind.INVALID_REQUEST, "malformed request body: " + e.getOriginalMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                error(exchange, ErrorKind.UNAVAILABLE, "agent on node " + agent.node() + " is shutting down");
            } catch (RuntimeException e) {
                LOG.error("agent request failed", e);
                error(exchange, ErrorKind.FAILED, "agent on node " + agent.node() + " failed: " + e);
            }
        }
    }

    /** Whether the caller showed a certificate in the handshake (the trust manager took it only if it is the operator's). */
    private static boolean clientCertified(HttpExchange exchange) {
        if (!(exchange instanceof com.sun.net.httpserver.HttpsExchange https)) {
            return false;
        }
        try {
            return https.getSSLSession().getPeerCertificates().length > 0;
        } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
            return false;
        }
    }

    private void error(HttpExchange exchange, ErrorKind kind, String message) throws IOException {
        reply(exchange, HttpErrors.status(kind), new ErrorReply(message, kind));
    }

    private Object route(HttpExchange exchange) throws AgentException, IOException, InterruptedException {
        String method = exchange.getRequestMethod();
        String path = exchange.getRequestURI().getPath();
        if (path.equals("/v1/time") && method.equals("GET")) {
            return new TimeReply(agent.now(), agent.node(), agent.runtimeKind());
        }
        if (path.equals("/v1/level0") && method.equals("GET")) {
            return agent.level0Room();
        }
        if (path.equals("/v1/vms")) {
            return switch (method) {
                case "GET" -> agent.vms();
                case "POST" -> agent.startVm(body(exchange, StartVmRequest.class).spec());
                default -> throw methodNotAllowed(method, path);
            };
        }
        if (path.equals("/v1/pods")) {
            if (!method.equals("PUT")) {
                throw methodNotAllowed(method, path);
            }
            var request = body(exchange, io.mekha.agent.api.AgentDtos.PodsRequest.class);
            if (request == null || request.pods() == null) {
                throw AgentException.invalid("a pods request needs a body: {\"pods\": {\"<namespace>_<vmi>\": {\"podUid\": ..., \"containerId\": ...}}}");
            }
            agent.expectPods(request.pods());
            return null;
        }
        Matcher exec = VM_EXEC.matcher(path);
        if (exec.matches()) {
            if (!method.equals("POST")) {
                throw methodNotAllowed(method, path);
            }
            return agent.exec(exec.group(1), body(exchange, io.mekha.agent.api.AgentDtos.ExecRequest.class));
        }
        Matcher vm = VM.matcher(path);
        if (vm.matches()) {
            return switch (method) {
                case "GET" -> agent.vm(vm.group(1));
                case "DELETE" -> {
                    agent.stopVm(vm.group(1));
                    yield null;
                }
                default -> throw methodNotAllowed(method, path);
            };
        }
        Matcher cp = CHECKPOINT.matcher(path);
        if (cp.matches()) {
            String id = cp.group(1);
            String action = cp.group(2) == null ? "" : cp.group(2);
            return switch (method + " " + action) {
                case "GET " -> status(exchange, id);
                case "DELETE " -> {
                    agent.discard(id);
                    yield null;
                }
                case "POST prepare" -> agent.prepare(id, body(exchange, PrepareRequest.class));
                case "POST suspend" -> agent.suspend(id, at(exchange));
                case "POST resume" -> "resumed".equals(query(exchange).get("wait"))
                        ? agent.resumeAndWait(id, at(exchange), RESUMED_REPLY_LIMIT) : agent.resume(id, at(exchange));
                case "POST abort" -> agent.abort(id, body(exchange, AbortRequest.class).reason());
                case "POST restart" -> {
                    RestartRequest request = body(exchange, RestartRequest.class);
                    yield agent.restart(id, request.at(), request.timePolicy(), request.slewPeriod(), request.level(), request.vms());
                }
                case "POST arm" -> agent.armRestart(id, at(exchange));
                case "DELETE restart" -> agent.callOffRestart(id, query(exchange).get("reason"));
                case "GET restart" -> agent.restartStatus(id);
                case "POST load" -> agent.loadLevel0(id, body(exchange, io.mekha.agent.api.AgentDtos.LoadLevel0Request.class).vms());
                case "POST flush" -> agent.flush(id, body(exchange, FlushRequest.class));
                case "POST replicate" -> {
                    agent.replicate(id, body(exchange, ReplicateRequest.class));
                    yield null;
                }
                case "POST partners" -> agent.hostPartner(id, body(exchange, PartnerShadowRequest.class));
                case "POST reserve" -> agent.reservePartner(id, body(exchange, io.mekha.agent.api.AgentDtos.PartnerReservation.class));
                case "GET partners" -> agent.partners(id);
                case "GET progress" -> agent.progress(id);
                case "DELETE partners" -> {
                    String one = query(exchange).get("vm");
                    if (one != null) {
                        agent.dropPartner(id, one);
                    } else {
                        agent.dropPartners(id);
                    }
                    yield null;
                }
                case "DELETE loaded" -> {
                    agent.dropLoaded(id);
                    yield null;
                }
                default -> throw methodNotAllowed(method, path);
            };
        }
        if (path.startsWith("/v1/stored/") && method.equals("POST")) {
            return switch (path.substring("/v1/stored/".length())) {
                case "manifest" -> {
                    agent.publishManifest(body(exchange, PublishManifestRequest.class));
                    yield null;
                }
                case "manifest/read" -> agent.readManifest(body(exchange, StoredRequest.class));
                case "list" -> agent.listStored(body(exchange, StoredRequest.class));
                case "delete" -> {
                    agent.deleteStored(body(exchange, StoredRequest.class));
                    yield null;
                }
                case "verify" -> agent.verifyStored(body(exchange, StoredVmsRequest.class));
                case "load" -> agent.loadStored(body(exchange, StoredVmsRequest.class));
                default -> throw AgentException.notFound("no such endpoint: " + method + " " + path);
            };
        }
        throw AgentException.notFound("no such endpoint: " + method + " " + path);
    }

    /** How long after Tr a resume with {@code ?wait=resumed} waits for its VMs before it answers what it has. */
    private static final java.time.Duration RESUMED_REPLY_LIMIT = java.time.Duration.ofSeconds(20);

    /** How long one status call may wait for a change: long enough to save calls, short enough to notice a dead caller. */
    private static final java.time.Duration MAX_WAIT = java.time.Duration.ofSeconds(30);

    /**
     * A checkpoint's status; with {@code ?after=V&waitMs=N}, once a VM changed phase after version V (or N ms passed);
     * with {@code ?until=PHASE&waitMs=N}, once every VM is in that phase or one failed or was aborted (or N ms passed):
     * the coordinator hears a capture the moment it happens, without polling, and a barrier costs one answer per node.
     */
    private Object status(HttpExchange exchange, String id) throws AgentException, InterruptedException {
        java.util.Map<String, String> query = query(exchange);
        if (!query.containsKey("after") && !query.containsKey("until")) {
            return agent.status(id);
        }
        java.time.Duration wait;
        try {
            wait = java.time.Duration.ofMillis(Long.parseLong(query.getOrDefault("waitMs", "5000")));
        } catch (NumberFormatException e) {
            throw AgentException.invalid("'waitMs' must be a whole number: " + e.getMessage());
        }
        if (wait.isNegative() || wait.compareTo(MAX_WAIT) > 0) {
            throw AgentException.invalid("'waitMs' must be between 0 and " + MAX_WAIT.toMillis());
        }
        if (query.containsKey("until")) {
            io.mekha.agent.api.VmPhase phase;
            try {
                phase = io.mekha.agent.api.VmPhase.valueOf(query.get("until"));
            } catch (IllegalArgumentException e) {
                throw AgentException.invalid("'until' must be a phase, one of " + java.util.Arrays.toString(io.mekha.agent.api.VmPhase.values()));
            }
            return agent.awaitPhase(id, phase, wait);
        }
        long after;
        try {
            after = Long.parseLong(query.get("after"));
        } catch (NumberFormatException e) {
            throw AgentException.invalid("'after' must be a whole number: " + e.getMessage());
        }
        return agent.awaitChange(id, after, wait);
    }

    private static java.util.Map<String, String> query(HttpExchange exchange) {
        java.util.Map<String, String> values = new java.util.HashMap<>();
        String raw = exchange.getRequestURI().getRawQuery();
        if (raw != null) {
            for (String pair : raw.split("&")) {
                int eq = pair.indexOf('=');
                if (eq > 0) {
                    values.put(java.net.URLDecoder.decode(pair.substring(0, eq), java.nio.charset.StandardCharsets.UTF_8),
                            java.net.URLDecoder.decode(pair.substring(eq + 1), java.nio.charset.StandardCharsets.UTF_8));
                }
            }
        }
        return values;
    }

    private java.time.Instant at(HttpExchange exchange) throws IOException, AgentException {
        AtRequest request = body(exchange, AtRequest.class);
        if (request.at() == null) {
            throw AgentException.invalid("the request needs 'at', the rendezvous instant");
        }
        return request.at();
    }

    private <T> T body(HttpExchange exchange, Class<T> type) throws IOException, AgentException {
        try (InputStream in = exchange.getRequestBody()) {
            byte[] bytes = in.readNBytes(MAX_BODY + 1);
            if (bytes.length > MAX_BODY) {
                throw AgentException.invalid("request body over " + MAX_BODY + " bytes");
            }
            if (bytes.length == 0) {
                throw AgentException.invalid("the request needs a JSON body (" + type.getSimpleName() + ")");
            }
            return json.readValue(bytes, type);
        }
    }

    private static AgentException methodNotAllowed(String method, String path) {
        return new AgentException(ErrorKind.METHOD_NOT_ALLOWED, method + " is not allowed on " + path);
    }

    private String metrics() {
        StringBuilder out = new StringBuilder();
        out.append("# HELP mekha_agent_requests_total Requests answered, by HTTP status class.\n# TYPE mekha_agent_requests_total counter\n");
        for (int i = 0; i < answered.length(); i++) {
            out.append("mekha_agent_requests_total{status=\"").append(i + 1).append("xx\"} ").append(answered.get(i)).append('\n');
        }
        out.append("# HELP mekha_agent_refused_total Requests refused for want of an allowed identity.\n# TYPE mekha_agent_refused_total counter\n")
                .append("mekha_agent_refused_total ").append(refusals.get()).append('\n');
        out.append("# HELP mekha_agent_vms QEMU instances this agent drives (VMs, shadows, partner copies).\n# TYPE mekha_agent_vms gauge\n")
                .append("mekha_agent_vms ").append(agent.vms().size()).append('\n');
        var level0 = agent.level0Usage();
        out.append("# HELP mekha_agent_level0_copies VM copies of complete checkpoints held in this node's memory (its own and partners').\n")
                .append("# TYPE mekha_agent_level0_copies gauge\nmekha_agent_level0_copies ").append(level0.copies()).append('\n');
        out.append("# HELP mekha_agent_level0_bytes Bytes those copies hold: a held stream's size, a shadow's guest memory.\n")
                .append("# TYPE mekha_agent_level0_bytes gauge\nmekha_agent_level0_bytes ").append(level0.bytes()).append('\n');
        out.append("# HELP mekha_agent_level0_room_bytes Memory more level-0 copies could take now (the smaller of MemAvailable and the"
                + " agent's cgroup headroom).\n# TYPE mekha_agent_level0_room_bytes gauge\nmekha_agent_level0_room_bytes ")
                .append(io.mekha.agent.level0.MemoryBound.roomMiB() * 1024L * 1024L).append('\n');
        var lending = agent.level0Room();
        out.append("# HELP mekha_agent_level0_lent_bytes Memory this node keeps for, or holds as, other nodes' level-0 copies (partner copies).\n")
                .append("# TYPE mekha_agent_level0_lent_bytes gauge\nmekha_agent_level0_lent_bytes ").append(lending.lentMiB() << 20).append('\n');
        out.append("# HELP mekha_agent_paused_past_deadline_vms VMs Mekha paused whose pause outlived its deadline: the resume guard is resuming them.\n")
                .append("# TYPE mekha_agent_paused_past_deadline_vms gauge\nmekha_agent_paused_past_deadline_vms ")
                .append(agent.stillPausedByMekha().size()).append('\n');
        out.append("# HELP mekha_agent_flushed_bytes_total Bytes this node's flushes wrote, by level.\n# TYPE mekha_agent_flushed_bytes_total counter\n");
        var totals = agent.flushTotals();
        totals.forEach(t -> out.append("mekha_agent_flushed_bytes_total{level=\"").append(t.level()).append("\"} ").append(t.bytes()).append('\n'));
        out.append("# HELP mekha_agent_flush_seconds_total Time this node's flushes took writing, by level (throughput: rate of bytes over rate of"
                + " seconds).\n# TYPE mekha_agent_flush_seconds_total counter\n");
        totals.forEach(t -> out.append("mekha_agent_flush_seconds_total{level=\"").append(t.level()).append("\"} ")
                .append(String.format(java.util.Locale.ROOT, "%.3f", t.took().toNanos() / 1e9)).append('\n'));
        return out.toString();
    }

    private static void plain(HttpExchange exchange, int status, String text) throws IOException {
        byte[] bytes = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "text/plain; version=0.0.4");
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    private void reply(HttpExchange exchange, int status, Object body) throws IOException {
        if (status >= 100 && status < 600) {
            answered.incrementAndGet(status / 100 - 1);
        }
        JsonReplies.reply(exchange, json, status, body);
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
