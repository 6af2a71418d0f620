package io.mekha.agent.kubevirt;

import com.fasterxml.jackson.databind.JsonNode;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.IOException;

/** Waits, over Mekha's monitor, until a launcher QEMU's migration (out of it, or into it) has completed. */
final class MigrationWait {
    private MigrationWait() {}

    /**
     * @param what for messages: "saving" or "loading"
     * @param incoming the QEMU is loading: QEMU 7.x reports no status on that side, only leaving {@code inmigrate}
     */
    static void completed(LauncherQemu qemu, QmpClient qmp, long deadline, String what, boolean incoming)
            throws QmpException, IOException, InterruptedException {
        while (true) {
            JsonNode migration = qmp.execute("query-migrate");
            String status = migration.path("status").asText("");
            if (status.equals("completed")) {
                return;
            }
            if (status.equals("failed") || status.equals("cancelled")) {
                throw new IOException(what + " the state of VMI " + qemu.namespace() + "/" + qemu.name() + " failed: "
                        + migration.path("error-desc").asText(status));
            }
            String run = incoming ? qmp.execute("query-status").path("status").asText("") : "";
            if (incoming && status.isEmpty() && !run.equals("inmigrate")) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new IOException(what + " the state of VMI " + qemu.namespace() + "/" + qemu.name() + " did not complete ("
                        + status + (run.isEmpty() ? "" : ", " + run) + ")");
            }
            Thread.sleep(10);
        }
    }
}
