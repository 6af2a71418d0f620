package io.mekha.agent.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;

/**
 * One reading of QEMU's {@code query-migrate}, on either side of a migration.
 *
 * @param dirtySyncCount how many times QEMU synchronised the dirty bitmap: 1 at setup, +1 after
 *     each complete pass over memory, so {@code >= 2} means every page was sent at least once
 * @param downtime QEMU's own downtime figure, once completed (else null)
 * @param pagesSaved RAM pages QEMU put into the stream so far (its "normal" and "duplicate" counts)
 */
public record MigrationStatus(String status, long transferredBytes, long remainingBytes, long totalBytes,
                              long dirtySyncCount, Duration downtime, Duration totalTime, String errorDescription, long pagesSaved) {

    public MigrationStatus(String status, long transferredBytes, long remainingBytes, long totalBytes, long dirtySyncCount,
                           Duration downtime, Duration totalTime, String errorDescription) {
        this(status, transferredBytes, remainingBytes, totalBytes, dirtySyncCount, downtime, totalTime, errorDescription, 0);
    }

    public static MigrationStatus parse(JsonNode reply) {
        JsonNode ram = reply.path("ram");
        return new MigrationStatus(
                reply.path("status").asText("none"),
                ram.path("transferred").asLong(0),
                ram.path("remaining").asLong(0),
                ram.path("total").asLong(0),
                ram.path("dirty-sync-count").asLong(0),
                reply.has("downtime") ? Duration.ofMillis(reply.get("downtime").asLong()) : null,
                reply.has("total-time") ? Duration.ofMillis(reply.get("total-time").asLong()) : null,
                reply.path("error-desc").asText(null),
                // RAM pages put into the stream so far: whole ones and zero ones
                ram.path("normal").asLong(0) + ram.path("duplicate").asLong(0));
    }

    public boolean completed() {
        return status.equals("completed");
    }

    /** Ended without success: failed or cancelled. */
    public boolean failed() {
        return status.equals("failed") || status.equals("cancelled") || status.equals("cancelling");
    }

    public boolean inProgress() {
        return !completed() && !failed() && !status.equals("none");
    }
}
