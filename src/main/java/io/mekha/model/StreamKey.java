package io.mekha.model;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.regex.Pattern;

/** The key of one stream between two nodes (a partner copy): 256 random bits, hex; made by the coordinator, given to both agents. */
public final class StreamKey {
    private static final Pattern FORM = Pattern.compile("[0-9a-f]{64}");

    private StreamKey() {}

    public static String random() {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        return HexFormat.of().formatHex(key);
    }

    /** Whether {@code key} has the form {@link #random()} makes. */
    public static boolean valid(String key) {
        return key != null && FORM.matcher(key).matches();
    }
}
