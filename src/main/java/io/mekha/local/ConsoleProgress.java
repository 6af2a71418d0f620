package io.mekha.local;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How far a workload had got in a console's text. The workload prints one progress line per step,
 * {@code <label><n> ...}, with n counting up by one.
 */
final class ConsoleProgress {
    private final String label;
    private final Pattern progress;
    private final Pattern labelAndDigitsOnly;

    ConsoleProgress(String label) {
        this.label = label;
        this.progress = Pattern.compile(Pattern.quote(label) + "(\\d+)");
        this.labelAndDigitsOnly = Pattern.compile(Pattern.quote(label) + "\\d*");
    }

    /**
     * The step the workload had got to in {@code consoleText}, counting a line cut short: a cut can
     * fall in the middle of a line, whose rest the restored VM then prints. A line cut before its
     * number was whole ({@code "RING st"}, or {@code "RING step=1"} of 100) is the step after the
     * last whole number: its rest, printed after the restore, no longer shows which step it was.
     * 0 if none.
     */
    long lastReached(String consoleText) {
        Matcher m = progress.matcher(consoleText);
        long last = 0;
        while (m.find()) {
            if (m.end() < consoleText.length()) {
                last = Math.max(last, Long.parseLong(m.group(1)));
            }
        }
        String unterminated = consoleText.substring(consoleText.lastIndexOf('\n') + 1);
        boolean numberMayBeCut = !unterminated.isEmpty()
                && (label.startsWith(unterminated) || labelAndDigitsOnly.matcher(unterminated).matches());
        return numberMayBeCut ? last + 1 : last;
    }
}
