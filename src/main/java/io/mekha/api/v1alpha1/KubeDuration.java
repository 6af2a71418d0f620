package io.mekha.api.v1alpha1;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as Kubernetes objects write them ({@code 90s}, {@code 1h30m}, {@code 250ms}), to and from {@link Duration}. */
public final class KubeDuration {
    private static final Pattern WHOLE = Pattern.compile(MekhaApi.DURATION_PATTERN);
    private static final Pattern PART = Pattern.compile("([0-9]+)(ms|s|m|h)");

    private KubeDuration() {}

    /** {@code text}, or {@code fallback} when it is unset; a malformed value names the field and the form it needs. */
    public static Duration parse(String field, String text, Duration fallback) {
        if (text == null || text.isBlank()) {
            return fallback;
        }
        if (!WHOLE.matcher(text).matches()) {
            throw new IllegalArgumentException(field + " '" + text + "' is not a duration: write it as 90s, 5m, 1h30m or 250ms");
        }
        Duration total = Duration.ZERO;
        Matcher m = PART.matcher(text);
        while (m.find()) {
            long n = Long.parseLong(m.group(1));
            total = total.plus(switch (m.group(2)) {
                case "ms" -> Duration.ofMillis(n);
                case "s" -> Duration.ofSeconds(n);
                case "m" -> Duration.ofMinutes(n);
                default -> Duration.ofHours(n);
            });
        }
        return total;
    }

    /** A figure for a person: {@code 185ms}, {@code 1.234ms}, {@code 12.5s}. */
    public static String format(Duration d) {
        if (d == null) {
            return null;
        }
        long nanos = d.toNanos();
        if (nanos < 10_000_000L) {
            return String.format(java.util.Locale.ROOT, "%.3fms", nanos / 1e6);
        }
        if (nanos < 10_000_000_000L) {
            return Math.round(nanos / 1e6) + "ms";
        }
        return String.format(java.util.Locale.ROOT, "%.1fs", nanos / 1e9);
    }
}
