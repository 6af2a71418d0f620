package io.mekha.agent.qemu;

import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A migration stream between two nodes' QEMUs, authenticated and encrypted with TLS over a key both
 * share (QEMU's {@code tls-creds-psk}): the coordinator makes one random key per copy and hands it to
 * both agents over their authenticated API; a sender without it fails the handshake, so the waiting
 * QEMU never loads state from anyone else, and nothing of the guest's memory crosses the network in
 * clear. The key lives in a file of the QEMU's own instance directory, readable by its owner only.
 */
public final class MigrationTls {
    private static final String USER = "mekha";
    private static final String CREDS = "mekha-migration-tls";

    private MigrationTls() {}

    /** Has {@code qemu} accept incoming state only over TLS with {@code key}; before {@code migrate-incoming}. */
    public static void server(QemuVm qemu, String key) throws QmpException, IOException {
        use(qemu, key, "server");
    }

    /** Has {@code qemu} send its state only over TLS with {@code key}; before {@code migrate}. */
    public static void client(QemuVm qemu, String key) throws QmpException, IOException {
        use(qemu, key, "client");
    }

    private static void use(QemuVm qemu, String key, String endpoint) throws QmpException, IOException {
        if (!io.mekha.model.StreamKey.valid(key)) {
            throw new IllegalArgumentException("a migration key is 64 lowercase hex digits");
        }
        Path dir = Files.createDirectories(qemu.paths().dir().resolve("migration-tls"));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        Path file = dir.resolve("keys.psk");
        Files.deleteIfExists(file);
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(file, USER + ":" + key + "\n", StandardCharsets.US_ASCII, StandardOpenOption.TRUNCATE_EXISTING);
        var args = QmpClient.args().put("qom-type", "tls-creds-psk").put("id", CREDS).put("endpoint", endpoint).put("dir", dir.toString());
        if (endpoint.equals("client")) {
            args.put("username", USER);
        }
        qemu.qmp().execute("object-add", args);
        qemu.qmp().execute("migrate-set-parameters", QmpClient.args().put("tls-creds", CREDS));
    }

    /**
     * Once the stream is through: the QEMU's later migrations (a flush to a level, through a local channel) go without
     * TLS again, and the key file is removed.
     */
    public static void forget(QemuVm qemu) {
        try {
            qemu.qmp().execute("migrate-set-parameters", QmpClient.args().put("tls-creds", ""));
            qemu.qmp().execute("object-del", QmpClient.args().put("id", CREDS));
        } catch (QmpException e) {
            // a QEMU that is gone needs no parameters reset
        }
        try {
            Files.deleteIfExists(qemu.paths().dir().resolve("migration-tls").resolve("keys.psk"));
        } catch (IOException e) {
            // the instance directory goes with the QEMU
        }
    }
}
