package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.AtRequest;
import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import java.io.IOException;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.time.Instant;
import java.util.Arrays;

/**
 * A rendezvous call (suspend at Ts, resume at Tr) opened before its instant is known: the request line
 * and headers are sent ahead, during the live stage; the body, the instant, is written once it is
 * chosen. Telling an agent the instant then costs one small write on an open connection instead of a
 * whole call, so the lead before it does not grow with the number of nodes: the agent's handler has
 * been waiting on the body, its request already authenticated.
 *
 * <p>Not thread-safe: {@link #send} and then {@link #reply} are called one after the other (from
 * different threads is fine, never at once). An agent whose connection breaks before the body is
 * complete does nothing (its request is unreadable).
 */
final class ArmedCall {
    /** The body's length, announced with the headers: {@code {"at":"..."}} padded with spaces (JSON allows them), so one write sends it. */
    static final int BODY_LENGTH = 64;

    private final AgentClient agent;
    private final String what;
    private final HttpURLConnection connection;
    private final OutputStream body;

    ArmedCall(AgentClient agent, String what, HttpURLConnection connection, OutputStream body) {
        this.agent = agent;
        this.what = what;
        this.connection = connection;
        this.body = body;
    }

    /** Writes the instant and ends the request. */
    void send(Instant at) throws AgentCallException {
        byte[] json = agent.bodyBytes(new AtRequest(at));
        if (json.length > BODY_LENGTH) {
            throw new IllegalStateException("a rendezvous body of " + json.length + " bytes does not fit in " + BODY_LENGTH);
        }
        byte[] padded = Arrays.copyOf(json, BODY_LENGTH);
        Arrays.fill(padded, json.length, BODY_LENGTH, (byte) ' ');
        try {
            body.write(padded);
            body.close(); // flushed: one write
        } catch (IOException e) {
            connection.disconnect();
            throw AgentCallException.unreachable(what + ": the request broke before its instant was written: " + e, e);
        }
    }

    /** The agent's answer, once {@link #send} has been called. */
    CheckpointStatus reply() throws AgentCallException {
        return agent.finish(connection, what, CheckpointStatus.class);
    }

    /** Closes the request without a body: the agent reads a broken request and does nothing. */
    void cancel() {
        connection.disconnect();
    }
}
