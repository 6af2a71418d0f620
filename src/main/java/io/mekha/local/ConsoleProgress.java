package io.mekha.local;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** How far a workload had got in a console's text: the highest number a progress pattern matched. */
final class ConsoleProgress {
    private ConsoleProgress() {}

    /**
     * The largest group-1 number of {@code progress} in {@code consoleText}, counting a line cut short:
     * a cut can fall in the middle of a line, whose rest the restored VM then prints. 0 if none.
     */
    static long lastReached(String consoleText, Pattern progress) {
        Matcher m = progress.matcher(consoleText);
        long last = 0;
        while (m.find()) {
            last = Math.max(last, Long.parseLong(m.group(1)));
        }
        return last;
    }
}
