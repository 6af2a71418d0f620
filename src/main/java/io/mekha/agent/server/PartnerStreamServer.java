package io.mekha.agent.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsExchange;
import com.sun.net.httpserver.HttpsServer;
import io.mekha.agent.AgentException;
import io.mekha.agent.AgentService;
import io.mekha.agent.api.AgentDtos.PartnerStreamHeader;
import io.mekha.agent.api.ErrorKind;
import io.mekha.agent.api.Json;
import io.mekha.tls.TlsNames;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.util.Base64;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.jboss.logging.Logger;

/**
 * The agent's partner listener: where other nodes' agents hand this node a level-0 copy of one of their VMs (a held
 * stream, KubeVirt). It does that one thing, on a port of its own, apart from the operator's API: mutual TLS where only
 * another node's agent gets through the handshake ({@link AgentCertificate#partnerServerContext}), then the copy must be
 * one this node keeps room for, from that very node (the certificate's name), with the copy's key. The operator's
 * identity, a tenant's, a token: none opens anything here.
 */
public final class PartnerStreamServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(PartnerStreamServer.class);
    private static final Pattern COPY = Pattern.compile("^/v1/checkpoints/([^/]+)/partners/([^/]+)$");
    private static final int MAX_HEADER = 64 * 1024;

    private final AgentService agent;
    private final HttpsServer server;
    private final ExecutorService executor = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "agent-partner-listener");
        t.setDaemon(true);
        return t;
    });
    private final ObjectMapper json = Json.mapper();

    /** Serves at {@code listen} with {@code tls} (which must require and check the peer's certificate: {@code partnerServerContext}). */
    public PartnerStreamServer(AgentService agent, InetSocketAddress listen, SSLContext tls) throws IOException {
        this.agent = agent;
        this.server = HttpsServer.create(listen, 16);
        server.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(tls) {
            @Override
            public void configure(com.sun.net.httpserver.HttpsParameters params) {
                javax.net.ssl.SSLParameters parameters = tls.getDefaultSSLParameters();
                parameters.setProtocols(io.mekha.tls.TlsContexts.PROTOCOLS);
                parameters.setNeedClientAuth(true);
                params.setSSLParameters(parameters);
            }
        });
        server.createContext("/", this::handle);
        server.setExecutor(executor);
    }

    /** Starts serving and tells the agent where streams of other nodes' VMs come in. */
    public PartnerStreamServer start() {
        server.start();
        agent.takeStreamsOn(port());
        return this;
    }

    public int port() {
        return server.getAddress().getPort();
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            String from = senderNode(exchange);
            if (from == null) {
                // the trust manager lets only agents' certificates through; this is the belt to its braces
                error(exchange, ErrorKind.UNAUTHENTICATED, "this is node " + agent.node() + "'s partner listener: only another node's Mekha"
                        + " agent, with its certificate, hands copies in here");
                return;
            }
            Matcher copy = COPY.matcher(exchange.getRequestURI().getPath());
            if (!copy.matches() || !exchange.getRequestMethod().equals("PUT")) {
                error(exchange, ErrorKind.NOT_FOUND, "the partner listener of node " + agent.node() + " takes only PUT "
                        + "/v1/checkpoints/<checkpoint>/partners/<vm>, not " + exchange.getRequestMethod() + " " + exchange.getRequestURI().getPath());
                return;
            }
            String id = URLDecoder.decode(copy.group(1), StandardCharsets.UTF_8);
            String vm = URLDecoder.decode(copy.group(2), StandardCharsets.UTF_8);
            try {
                PartnerStreamHeader header = header(exchange.getRequestHeaders().getFirst("Mekha-Copy"));
                String key = exchange.getRequestHeaders().getFirst("Mekha-Copy-Key");
                if (exchange.getRequestHeaders().containsKey("Mekha-Copy-Probe")) {
                    // asked before the body is sent: a refusal of a large body would otherwise reach the sender as a broken pipe
                    agent.probePartnerStream(id, vm, from, key, header);
                    exchange.sendResponseHeaders(204, -1);
                    return;
                }
                try (InputStream body = exchange.getRequestBody()) {
                    Object receipt = agent.receivePartnerStream(id, vm, from, key, header, body);
                    JsonReplies.reply(exchange, json, 200, receipt);
                }
            } catch (AgentException e) {
                LOG.warnf("partner copy of VM '%s' (checkpoint %s) from node %s refused: %s", vm, id, from, e.getMessage());
                error(exchange, e.kind(), e.getMessage());
            } catch (RuntimeException e) {
                LOG.error("partner copy failed", e);
                error(exchange, ErrorKind.FAILED, "node " + agent.node() + " failed: " + e);
            }
        }
    }

    /** The node whose agent's certificate the sender showed in the handshake, or null. */
    private static String senderNode(HttpExchange exchange) {
        if (!(exchange instanceof HttpsExchange https)) {
            return null;
        }
        try {
            var certificates = https.getSSLSession().getPeerCertificates();
            return certificates.length > 0 && certificates[0] instanceof X509Certificate x509 ? TlsNames.nodeOf(TlsNames.commonName(x509)) : null;
        } catch (SSLPeerUnverifiedException e) {
            return null;
        }
    }

    private PartnerStreamHeader header(String encoded) throws AgentException {
        if (encoded == null || encoded.length() > MAX_HEADER) {
            throw AgentException.invalid("a partner copy needs its 'Mekha-Copy' header (the copy's description, base64url JSON, at most "
                    + MAX_HEADER + " characters)");
        }
        try {
            return json.readValue(Base64.getUrlDecoder().decode(encoded), PartnerStreamHeader.class);
        } catch (IOException | IllegalArgumentException e) {
            throw AgentException.invalid("the 'Mekha-Copy' header is not a copy's description: " + e.getMessage());
        }
    }

    private void error(HttpExchange exchange, ErrorKind kind, String message) throws IOException {
        JsonReplies.error(exchange, json, kind, message);
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
