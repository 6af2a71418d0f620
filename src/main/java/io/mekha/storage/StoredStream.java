package io.mekha.storage;

import java.util.Locale;

/**
 * One VM's saved QEMU migration stream as stored at a level.
 *
 * @param file the file (object) name inside the checkpoint's directory (prefix)
 * @param compression {@code none} or {@code zstd}
 * @param bytes stored size (after compression)
 * @param rawBytes size of the migration stream itself
 * @param sha256 hex SHA-256 of the stored bytes: verifiable without decompressing
 */
public record StoredStream(String file, String compression, long bytes, long rawBytes, String sha256) {

    public static String fileName(String vm, String compression) {
        return vm + ".vmstate" + (Compression.parse(compression) == Compression.ZSTD ? ".zst" : "");
    }

    public enum Compression {
        NONE, ZSTD;

        public static Compression parse(String text) {
            if (text == null || text.isBlank()) {
                return NONE;
            }
            return switch (text.trim().toLowerCase(Locale.ROOT)) {
                case "none" -> NONE;
                case "zstd" -> ZSTD;
                default -> throw new IllegalArgumentException("unknown compression '" + text + "': use none or zstd");
            };
        }

        public String text() {
            return name().toLowerCase(Locale.ROOT);
        }
    }
}
