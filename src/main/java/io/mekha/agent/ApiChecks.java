package io.mekha.agent;

import java.time.Duration;
import java.time.Instant;
import java.util.regex.Pattern;

/**
 * What the agent's API takes in, checked at its edge with an error that says what to fix (issue 14,
 * item 14): durations positive and bounded (a pause deadline of a year would let a VM stay paused for
 * one when its coordinator is gone), rendezvous instants near the agent's now, hosts that are names or
 * addresses, and migration URIs that are {@code tcp:} to such a host (QEMU also takes {@code exec:},
 * which would run a command on the node).
 */
final class ApiChecks {
    /** The longest a VM may stay paused for a checkpoint before the agent resumes it by itself. */
    static final Duration MAX_PAUSE_DEADLINE = Duration.ofMinutes(10);
    /** How far ahead a rendezvous instant may be: every lead the coordinator uses is well below it. */
    static final Duration MAX_LEAD = Duration.ofMinutes(5);
    /** How long ago a rendezvous instant may be (it came late: the agent acts at once), beyond which it is a mistake. */
    static final Duration MAX_LATE = Duration.ofSeconds(30);
    private static final Pattern HOST = Pattern.compile("[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]{2,45}]");
    private static final Pattern TCP_URI = Pattern.compile("tcp:(?<host>[^:\\[\\]]+|\\[[0-9A-Fa-f:.]+]):(?<port>[0-9]{1,5})");

    private static final Pattern HTTPS_BASE = Pattern.compile("https://(?<host>[^:/\\[\\]@]+|\\[[0-9A-Fa-f:.]+]):(?<port>[0-9]{1,5})/?");

    private ApiChecks() {}

    /** {@code d} (may be null when {@code optional}) is positive and at most {@code max}. */
    static Duration duration(String what, Duration d, Duration max, boolean optional) throws AgentException {
        if (d == null) {
            if (optional) {
                return null;
            }
            throw AgentException.invalid(what + " is required");
        }
        if (d.isNegative() || d.isZero() || d.compareTo(max) > 0) {
            throw AgentException.invalid(what + " must be more than 0 and at most " + max + ", got " + d);
        }
        return d;
    }

    /** {@code d}, when given, is zero or positive and at most {@code max}. */
    static Duration notNegative(String what, Duration d, Duration max) throws AgentException {
        if (d != null && (d.isNegative() || d.compareTo(max) > 0)) {
            throw AgentException.invalid(what + " must be at least 0 and at most " + max + ", got " + d);
        }
        return d;
    }

    /** A rendezvous instant in this agent's clock: given, and between {@link #MAX_LATE} ago and {@link #MAX_LEAD} ahead of {@code now}. */
    static Instant instant(String what, Instant at, Instant now) throws AgentException {
        if (at == null) {
            throw AgentException.invalid(what + " is required (an instant in the agent's clock, as GET /v1/time tells it)");
        }
        if (at.isBefore(now.minus(MAX_LATE)) || at.isAfter(now.plus(MAX_LEAD))) {
            throw AgentException.invalid(what + " " + at + " is too far from the agent's clock (" + now + "): it must be within " + MAX_LATE
                    + " before and " + MAX_LEAD + " after it; re-read the agent's time (GET /v1/time) and its offset");
        }
        return at;
    }

    /** A host name or address (IPv6 in brackets), nothing else. */
    static String host(String what, String host) throws AgentException {
        if (host == null || !HOST.matcher(host).matches()) {
            throw AgentException.invalid(what + " must be a host name or an address, got '" + host + "'");
        }
        return host;
    }

    /** A migration URI the agent hands to QEMU: only {@code tcp:<host>:<port>}. */
    static String migrationUri(String what, String uri) throws AgentException {
        var m = uri == null ? null : TCP_URI.matcher(uri);
        if (m == null || !m.matches()) {
            throw AgentException.invalid(what + " must be tcp:<host>:<port>, got '" + uri + "' (other QEMU transports, such as exec:,"
                    + " are refused)");
        }
        host(what + "'s host", m.group("host"));
        int port = Integer.parseInt(m.group("port"));
        if (port < 1 || port > 65535) {
            throw AgentException.invalid(what + ": port " + port + " is not in 1..65535");
        }
        return uri;
    }

    /**
     * A partner agent's listener for held streams: only {@code https://<host>:<port>} (no path, no user): a VM's state goes
     * to another node encrypted, to an agent whose certificate names that node, and nowhere else.
     */
    static java.net.URI partnerListener(String what, String uri) throws AgentException {
        var m = uri == null ? null : HTTPS_BASE.matcher(uri);
        if (m == null || !m.matches()) {
            throw AgentException.invalid(what + " must be https://<host>:<port> (a partner agent's listener), got '" + uri + "'");
        }
        host(what + "'s host", m.group("host"));
        int port = Integer.parseInt(m.group("port"));
        if (port < 1 || port > 65535) {
            throw AgentException.invalid(what + ": port " + port + " is not in 1..65535");
        }
        return java.net.URI.create(uri.endsWith("/") ? uri : uri + "/");
    }
}
