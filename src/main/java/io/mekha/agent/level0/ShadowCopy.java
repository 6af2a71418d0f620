package io.mekha.agent.level0;

import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.nio.file.Path;
import java.time.Duration;

/** Level 0 as a shadow: a paused QEMU with the VM's machine, loading the state as it arrives. */
public record ShadowCopy(QemuVm qemu) implements Level0Copy {

    /** The socket the shadow listens on (a relay, when there is one, forwards to it). */
    public Path socket() {
        return qemu.paths().dir().resolve("migrate.sock");
    }

    @Override
    public String receive() throws QmpException {
        if (io.mekha.agent.qemu.MigrationCapabilities.offers(qemu.qmp(), "events")) {
            io.mekha.agent.qemu.MigrationCapabilities.set(qemu.qmp(), java.util.Map.of("events", true)); // the load is heard, not polled for
        }
        qemu.qmp().execute("migrate-incoming", QmpClient.args().put("uri", "unix:" + socket()));
        return "unix:" + socket();
    }

    @Override
    public boolean offersSwitchoverAck() throws QmpException {
        return io.mekha.agent.qemu.MigrationCapabilities.offers(qemu.qmp(), "switchover-ack");
    }

    @Override
    public String awaitComplete(long deadline) throws QmpException, InterruptedException {
        return IncomingState.awaitLoaded(qemu, deadline);
    }

    @Override
    public boolean held() {
        return qemu.isAlive() && qemu.role() == QemuVm.Role.SHADOW;
    }

    @Override
    public boolean lost() {
        return qemu.exitedWithin(Duration.ZERO);
    }

    @Override
    public void discard() {
        qemu.kill();
    }

    @Override
    public String describe() {
        return "its shadow QEMU";
    }

    @Override
    public String lastWords() {
        try {
            Path log = qemu.paths().log();
            String text = java.nio.file.Files.exists(log) ? java.nio.file.Files.readString(log).strip() : "";
            return text.isEmpty() ? "" : " (the shadow said: " + text.lines().reduce((a, b) -> b).orElse("") + ")";
        } catch (java.io.IOException e) {
            return "";
        }
    }
}
