package io.mekha.local;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The rounds and hashes the dirtier workload printed on a console: round number to hash. */
public final class DirtierLog {
    private static final Pattern ROUND = Pattern.compile("DIRTIER round=(\\d+) hash=([0-9a-f]{16})");
    private static final ConsoleProgress ROUND_STARTED = new ConsoleProgress("DIRTIER round=");

    private DirtierLog() {}

    public static TreeMap<Long, String> parse(List<String> lines) {
        TreeMap<Long, String> rounds = new TreeMap<>();
        for (String line : lines) {
            Matcher m = ROUND.matcher(line);
            if (m.find()) {
                rounds.put(Long.parseLong(m.group(1)), m.group(2));
            }
        }
        return rounds;
    }

    /**
     * The last round the workload had got to in a console's text, counting a line cut short: a cut
     * can fall in the middle of a line, whose rest the restored VM then prints.
     */
    public static long lastRoundReached(String consoleText) {
        return ROUND_STARTED.lastReached(consoleText);
    }

    public static long lastRound(List<String> lines) {
        TreeMap<Long, String> rounds = parse(lines);
        return rounds.isEmpty() ? 0 : rounds.lastKey();
    }

    /** The rounds both logs printed, for comparing hash by hash. */
    public static TreeMap<Long, String[]> overlap(Map<Long, String> a, Map<Long, String> b) {
        TreeMap<Long, String[]> both = new TreeMap<>();
        a.forEach((round, hash) -> {
            if (b.containsKey(round)) {
                both.put(round, new String[] {hash, b.get(round)});
            }
        });
        return both;
    }
}
