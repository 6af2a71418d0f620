package io.mekha.model;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Parses memory sizes as users write them: {@code 256Mi}, {@code 1Gi}, {@code 512M}, {@code 512} (MiB). */
public final class MemorySize {
    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*(|m|mi|mib|mb|g|gi|gib|gb|t|ti|tib|tb)");

    private MemorySize() {}

    /** The size in MiB; binary and decimal suffixes both mean powers of 1024, as QEMU's -m does. */
    public static long parseMiB(String text) {
        Matcher m = SIZE.matcher(text.trim().toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a memory size; write e.g. 256Mi or 1Gi");
        }
        long value;
        try {
            value = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is too large to be a memory size");
        }
        return switch (m.group(2).isEmpty() ? 'm' : m.group(2).charAt(0)) {
            case 'g' -> Math.multiplyExact(value, 1024L);
            case 't' -> Math.multiplyExact(value, 1024L * 1024L);
            default -> value;
        };
    }
}
