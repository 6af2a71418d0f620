package io.mekha.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;

/**
 * An asynchronous QMP event, e.g. {@code STOP}, {@code RESUME}, {@code MIGRATION}.
 *
 * @param timestamp QEMU's own host-clock time of the event (not the time we read it)
 */
public record QmpEvent(String name, JsonNode data, Instant timestamp) {}
