package io.mekha.agent.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import io.mekha.agent.api.AgentDtos.ErrorReply;
import io.mekha.agent.api.ErrorKind;
import io.mekha.agent.api.HttpErrors;
import java.io.IOException;

/** How the agent's listeners answer: JSON bodies, and errors as {@code {"error", "kind"}} with their kind's HTTP status. */
final class JsonReplies {
    private JsonReplies() {}

    /** {@code body} as JSON with {@code status} (null: no body). */
    static void reply(HttpExchange exchange, ObjectMapper json, int status, Object body) throws IOException {
        if (body == null) {
            exchange.sendResponseHeaders(status, -1);
            return;
        }
        byte[] bytes = json.writeValueAsBytes(body);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    /** The one place an error's kind becomes an HTTP status. */
    static void error(HttpExchange exchange, ObjectMapper json, ErrorKind kind, String message) throws IOException {
        reply(exchange, json, HttpErrors.status(kind), new ErrorReply(message, kind));
    }
}
