package io.mekha.agent.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.util.Map;

/** Asking a QEMU which migration capabilities it offers, and setting them. */
public final class MigrationCapabilities {
    /** Migration over a local unix socket: do not let QEMU's default 128 MiB/s cap slow it. */
    public static final long UNCAPPED_BANDWIDTH = 64L << 30;
    /** A downtime limit the final transfer of a stopped VM always fits in. */
    public static final long FINAL_DOWNTIME_MS = 600_000;

    private MigrationCapabilities() {}

    /** Whether the QEMU behind {@code qmp} knows the migration capability {@code name}. */
    public static boolean offers(QmpClient qmp, String name) throws QmpException {
        JsonNode caps = qmp.execute("query-migrate-capabilities");
        if (caps instanceof ArrayNode list) {
            for (JsonNode cap : list) {
                if (name.equals(cap.path("capability").asText())) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Sets capabilities in one call, in the map's order. */
    public static void set(QmpClient qmp, Map<String, Boolean> capabilities) throws QmpException {
        ObjectNode args = QmpClient.args();
        var list = args.putArray("capabilities");
        capabilities.forEach((name, on) -> list.add(QmpClient.args().put("capability", name).put("state", on)));
        qmp.execute("migrate-set-capabilities", args);
    }

    /**
     * Readies a paused VM (a shadow) to stream out, to a file or a partner, in one uncapped pass, with the return path
     * and switchover acknowledgement off (a shadow keeps them from receiving its state).
     */
    public static void plainOutgoingMigration(QemuVm vm) throws QmpException {
        vm.qmp().execute("migrate-set-parameters", QmpClient.args().put("max-bandwidth", UNCAPPED_BANDWIDTH)
                .put("downtime-limit", FINAL_DOWNTIME_MS));
        if (offers(vm.qmp(), "switchover-ack")) {
            var off = new java.util.LinkedHashMap<String, Boolean>();
            off.put("return-path", false);
            off.put("switchover-ack", false);
            set(vm.qmp(), off);
        }
    }
}
