package io.mekha.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mekha.agent.api.AgentDtos.ErrorReply;
import io.mekha.agent.api.AgentDtos.PartnerStreamHeader;
import io.mekha.agent.api.AgentDtos.PartnerStreamReceipt;
import io.mekha.agent.api.ErrorKind;
import io.mekha.agent.api.Json;
import io.mekha.agent.level0.HeldState;
import io.mekha.agent.storage.TransferMeter;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.function.Function;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLSocketFactory;

/**
 * Hands this node's held stream of one VM to the agent of its partner node: one HTTPS {@code PUT} on the partner's
 * listener, over the agents' mutual TLS (this agent's certificate, and trust in the partner node's agent alone), with
 * the copy's key; the body is the stream, then the VM's pod-only disk at the cut. Done only once the partner's receipt
 * (bytes, SHA-256) matches what was sent.
 */
final class PartnerStreamSender {
    /** The partner listener's path for one copy. */
    static final String PATH = "/v1/checkpoints/%s/partners/%s";
    /** The copy's key (64 hex digits, the one the partner keeps room with). */
    static final String KEY_HEADER = "Mekha-Copy-Key";
    /** What a restart from the copy needs ({@link PartnerStreamHeader} as JSON, base64url). */
    static final String COPY_HEADER = "Mekha-Copy";
    /** Asks whether the copy would be taken, with no body. */
    static final String PROBE_HEADER = "Mekha-Copy-Probe";
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
    /** Longest the partner may take between two reads of the body, or to answer once it has it all. */
    private static final Duration READ_TIMEOUT = Duration.ofMinutes(2);
    private static final int CHUNK = 1 << 20;

    private final String node;
    private final Function<String, SSLSocketFactory> tls;
    private final ObjectMapper json = Json.mapper();

    /** @param tls for the agent of a node: this agent's identity, trust in that node's agent alone (null: no mutual TLS here) */
    PartnerStreamSender(String node, Function<String, SSLSocketFactory> tls) {
        this.node = node;
        this.tls = tls;
    }

    /** Sends {@code state} (with its disk) to {@code partnerNode}'s agent at {@code partner} ({@code https://host:port}). */
    PartnerStreamReceipt send(String id, HeldState state, PartnerStreamHeader header, URI partner, String partnerNode, String key,
                              TransferMeter meter) throws AgentException {
        if (tls == null) {
            throw AgentException.unprocessable("node " + node + " serves without the agents' mutual TLS (--tls-from-csr): it sends no VM's"
                    + " state to another node, where it would travel unauthenticated and in the clear", null);
        }
        if (partnerNode == null || partnerNode.equals(node)) {
            throw AgentException.invalid("a held stream goes to another node's agent: name it ('partnerNode')");
        }
        Path disk = state.disk();
        long diskBytes;
        try {
            diskBytes = disk == null ? 0 : Files.size(disk);
        } catch (IOException e) {
            throw AgentException.failed("VM '" + header.vm() + "': cannot read its disk at the cut " + disk + ": " + e.getMessage(), e);
        }
        PartnerStreamHeader sent = new PartnerStreamHeader(header.vm(), node, header.spec(), header.accelerator(), header.stoppedAt(),
                header.guestClockAtCut(), header.timePolicy(), header.stopLate(), state.bytes(), diskBytes);
        URI target = partner.resolve(String.format(PATH, encode(id), encode(header.vm())));
        String what = "handing VM '" + header.vm() + "' of checkpoint " + id + " to node " + partnerNode + " (" + partner + ")";
        MessageDigest sha = sha256();
        HttpsURLConnection connection = null;
        try {
            // asked first, with no body: a refusal (no room, no such copy, a wrong key) then reaches this node whole
            connection = open(target, partnerNode, key, sent);
            connection.setRequestProperty(PROBE_HEADER, "1");
            connection.setFixedLengthStreamingMode(0);
            connection.getOutputStream().close();
            int probed = connection.getResponseCode();
            if (probed >= 300) {
                try (InputStream in = connection.getErrorStream()) {
                    throw refused(what, probed, in == null ? new byte[0] : in.readAllBytes());
                }
            }
            connection = open(target, partnerNode, key, sent);
            connection.setFixedLengthStreamingMode(state.bytes() + diskBytes);
            meter.stage("sending to node " + partnerNode, state.bytes() + diskBytes);
            try (OutputStream out = connection.getOutputStream()) {
                try (InputStream in = state.open()) {
                    pipe(in, out, sha, meter);
                }
                if (disk != null) {
                    try (InputStream in = Files.newInputStream(disk)) {
                        pipe(in, out, sha, meter);
                    }
                }
            }
            int status = connection.getResponseCode();
            try (InputStream in = status >= 400 ? connection.getErrorStream() : connection.getInputStream()) {
                byte[] reply = in == null ? new byte[0] : in.readAllBytes();
                if (status >= 300) {
                    throw refused(what, status, reply);
                }
                PartnerStreamReceipt receipt = json.readValue(reply, PartnerStreamReceipt.class);
                String mine = HexFormat.of().formatHex(sha.digest());
                if (receipt.bytes() != state.bytes() + diskBytes || !mine.equals(receipt.sha256())) {
                    throw AgentException.failed(what + ": node " + partnerNode + " says it took " + receipt.bytes() + " bytes (SHA-256 "
                            + receipt.sha256() + "), this node sent " + (state.bytes() + diskBytes) + " (SHA-256 " + mine + ")", null);
                }
                return receipt;
            }
        } catch (IOException e) {
            throw AgentException.failed(what + " failed: " + e.getMessage(), e);
        } finally {
            if (connection != null) {
                connection.disconnect();
            }
        }
    }

    private HttpsURLConnection open(URI target, String partnerNode, String key, PartnerStreamHeader sent) throws IOException {
        HttpsURLConnection connection = (HttpsURLConnection) target.toURL().openConnection();
        connection.setSSLSocketFactory(tls.apply(partnerNode));
        // who the peer is was checked in the handshake (its certificate names the partner node's agent); none names a pod IP
        connection.setHostnameVerifier((host, session) -> true);
        connection.setConnectTimeout((int) CONNECT_TIMEOUT.toMillis());
        connection.setReadTimeout((int) READ_TIMEOUT.toMillis());
        connection.setRequestMethod("PUT");
        connection.setDoOutput(true);
        connection.setRequestProperty("Content-Type", "application/octet-stream");
        connection.setRequestProperty(KEY_HEADER, key);
        connection.setRequestProperty(COPY_HEADER, Base64.getUrlEncoder().withoutPadding().encodeToString(json.writeValueAsBytes(sent)));
        return connection;
    }

    private AgentException refused(String what, int status, byte[] reply) {
        try {
            ErrorReply error = json.readValue(reply, ErrorReply.class);
            ErrorKind kind = error.kind() == null ? ErrorKind.FAILED : error.kind();
            return new AgentException(kind == ErrorKind.NOT_FOUND ? ErrorKind.CONFLICT : kind, what + ": refused: " + error.error());
        } catch (IOException e) {
            return AgentException.failed(what + ": refused (" + status + "): " + new String(reply, StandardCharsets.UTF_8), null);
        }
    }

    private static void pipe(InputStream in, OutputStream out, MessageDigest sha, TransferMeter meter) throws IOException {
        byte[] buffer = new byte[CHUNK];
        int n;
        while ((n = in.read(buffer)) > 0) {
            out.write(buffer, 0, n);
            sha.update(buffer, 0, n);
            meter.add(n);
        }
    }

    private static String encode(String part) {
        return URLEncoder.encode(part, StandardCharsets.UTF_8);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        }
    }
}
