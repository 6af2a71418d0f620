package io.mekha.agent.server;

import io.mekha.agent.api.ErrorKind;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * The shared secret that authenticates the coordinator to agents (until Kubernetes identities
 * take over in the operator): sent as {@code Authorization: Bearer <token>}, compared in constant time.
 */
public record BearerToken(String value) implements AgentAuthenticator {

    public BearerToken {
        if (value == null || value.length() < 16) {
            throw new IllegalArgumentException("an agent token needs at least 16 characters");
        }
    }

    public static BearerToken random() {
        byte[] bytes = new byte[32];
        new SecureRandom().nextBytes(bytes);
        return new BearerToken(HexFormat.of().formatHex(bytes));
    }

    /** Reads a token file (first line); refuses files others can read. */
    public static BearerToken read(Path file) throws IOException {
        var perms = Files.getPosixFilePermissions(file);
        if (perms.stream().anyMatch(p -> p.name().startsWith("GROUP") || p.name().startsWith("OTHERS"))) {
            throw new IOException("token file " + file + " is readable by others (" + PosixFilePermissions.toString(perms)
                    + "); chmod 600 it");
        }
        String first = Files.readString(file).lines().findFirst().orElse("").trim();
        return new BearerToken(first);
    }

    /** Writes the token to a new file only its owner can read. */
    public void write(Path file) throws IOException {
        Files.deleteIfExists(file);
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(file, value + "\n");
    }

    /** Whether an Authorization header carries this token. */
    public boolean matches(String authorizationHeader) {
        if (authorizationHeader == null || !authorizationHeader.startsWith("Bearer ")) {
            return false;
        }
        byte[] given = authorizationHeader.substring("Bearer ".length()).trim().getBytes(StandardCharsets.UTF_8);
        return MessageDigest.isEqual(given, value.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public Verdict check(String authorizationHeader) {
        return matches(authorizationHeader) ? Verdict.allow("holder of the agent token")
                : Verdict.refuse(ErrorKind.UNAUTHENTICATED, "needs 'Authorization: Bearer <token>' with its token");
    }

    public String header() {
        return "Bearer " + value;
    }

    @Override
    public String toString() {
        return "BearerToken[redacted]";
    }
}
