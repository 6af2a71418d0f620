package io.mekha.local;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The sums the guest's {@code ringnet} workload prints, computed on the host: what an
 * uninterrupted run prints, step by step and node by node. A VC restored from a consistent
 * checkpoint must print exactly these. Mirrors src/guest/workloads/ringnet.c.
 */
public final class RingReference {
    private static final Pattern STEP = Pattern.compile("RING step=(\\d+) node=(\\d+) sum=([0-9a-f]{16})");
    private static final ConsoleProgress STEP_STARTED = new ConsoleProgress("RING step=");
    private static final int PAGE = 4096;
    private static final int WORDS_PER_PAGE_TOUCHED = 8;

    private RingReference() {}

    static long mix(long x) {
        x += 0x9e3779b97f4a7c15L;
        x = (x ^ (x >>> 30)) * 0xbf58476d1ce4e5b9L;
        x = (x ^ (x >>> 27)) * 0x94d049bb133111ebL;
        return x ^ (x >>> 31);
    }

    /** sums[step-1][node] for {@code steps} steps of a ring of {@code nodes} (ringnet -m mib -d dirtyMib). */
    public static long[][] sums(int nodes, int steps, int mib, int dirtyMib) {
        return sumsByPages(nodes, steps, mib, dirtyMib * (1024 * 1024 / PAGE));
    }

    /** sums[step-1][node] for a ring that dirties {@code dirtyPages} pages a step (ringnet -m mib -p dirtyPages). */
    public static long[][] sumsByPages(int nodes, int steps, int mib, int dirtyPages) {
        int pages = mib * (1024 * 1024 / PAGE);
        int wordsPerPage = PAGE / Long.BYTES;
        int stride = wordsPerPage / WORDS_PER_PAGE_TOUCHED;
        long[][] buffers = new long[nodes][];
        long[] state = new long[nodes];
        int[] nextPage = new int[nodes];
        for (int n = 0; n < nodes; n++) {
            long[] buf = new long[pages * wordsPerPage];
            for (int w = 0; w < buf.length; w++) {
                buf[w] = mix(w ^ ((long) n << 40));
            }
            buffers[n] = buf;
            state[n] = mix(0x1234 + n);
        }
        long[][] sums = new long[steps][nodes];
        for (int step = 1; step <= steps; step++) {
            long[] sent = new long[nodes];
            for (int n = 0; n < nodes; n++) {
                long s = state[n];
                long[] buf = buffers[n];
                for (int p = 0; p < dirtyPages; p++) {
                    int base = nextPage[n] * wordsPerPage;
                    for (int w = 0; w < WORDS_PER_PAGE_TOUCHED; w++) {
                        long old = buf[base + w * stride];
                        s = mix(s ^ old);
                        buf[base + w * stride] = mix(old + step);
                    }
                    nextPage[n] = (nextPage[n] + 1) % pages;
                }
                state[n] = s;
                sent[n] = s;
            }
            for (int n = 0; n < nodes; n++) {
                long received = sent[Math.floorMod(n - 1, nodes)];
                state[n] = mix(state[n] ^ received ^ step);
                sums[step - 1][n] = state[n];
            }
        }
        return sums;
    }

    /** The step sums one node printed on its console: step to sum. */
    public static TreeMap<Long, Long> printed(List<String> consoleLines, int node) {
        TreeMap<Long, Long> out = new TreeMap<>();
        for (String line : consoleLines) {
            Matcher m = STEP.matcher(line);
            if (m.find() && Integer.parseInt(m.group(2)) == node) {
                out.put(Long.parseLong(m.group(1)), Long.parseUnsignedLong(m.group(3), 16));
            }
        }
        return out;
    }

    /** The last step a node had got to in its console's text, counting a line cut short by the cut. */
    public static long lastStepReached(String consoleText) {
        return STEP_STARTED.lastReached(consoleText);
    }

    /** Steps whose printed sum differs from the reference, described; empty when all match. */
    public static List<String> mismatches(Map<Long, Long> printed, long[][] reference, int node) {
        return printed.entrySet().stream()
                .filter(e -> e.getKey() > reference.length || reference[(int) (e.getKey() - 1)][node] != e.getValue())
                .map(e -> "node " + node + " step " + e.getKey() + ": printed " + Long.toHexString(e.getValue())
                        + ", expected " + (e.getKey() > reference.length ? "no such step" : Long.toHexString(reference[(int) (e.getKey() - 1)][node])))
                .toList();
    }
}
