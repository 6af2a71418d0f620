package io.mekha.local;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reads HPC Challenge's own verification out of its output file (hpccoutf.txt). */
public final class HpccOutput {
    private static final Pattern NODES_WITH_ERROR = Pattern.compile("Node\\(s\\) with error (\\d+)");
    private static final Pattern FAILED_RESIDUAL = Pattern.compile("(\\d+) tests completed and failed residual checks");
    private static final Pattern RANDOM_ACCESS = Pattern.compile("Found (\\d+) errors in \\d+ locations \\((passed|failed)\\)");

    private HpccOutput() {}

    /** Every failed or missing check; empty when HPCC finished and passed everything it verifies. */
    public static List<String> problems(String output) {
        List<String> problems = new ArrayList<>();
        if (!output.contains("End of HPC Challenge tests.")) {
            problems.add("HPCC did not finish (no 'End of HPC Challenge tests.')");
        }
        if (!output.contains("Success=1")) {
            problems.add("the summary does not say Success=1");
        }
        output.lines().filter(l -> l.contains("FAILED")).forEach(l -> problems.add("failed: " + l.trim()));
        Matcher m = FAILED_RESIDUAL.matcher(output);
        while (m.find()) {
            if (!m.group(1).equals("0")) {
                problems.add("HPL or PTRANS: " + m.group(0));
            }
        }
        m = NODES_WITH_ERROR.matcher(output);
        while (m.find()) {
            if (!m.group(1).equals("0")) {
                problems.add(m.group(0));
            }
        }
        m = RANDOM_ACCESS.matcher(output);
        int randomAccess = 0;
        while (m.find()) {
            randomAccess++;
            if (!m.group(2).equals("passed")) {
                problems.add("RandomAccess: " + m.group(0));
            }
        }
        if (output.contains("End of HPC Challenge tests.")) {
            if (!output.contains("PASSED")) {
                problems.add("no HPL/PTRANS check says PASSED");
            }
            if (randomAccess == 0) {
                problems.add("no RandomAccess verification found");
            }
            if (!output.contains("Solution Validates")) {
                problems.add("STREAM's solution does not validate");
            }
        }
        return problems;
    }

    /** A one-line account of what passed. */
    public static String summary(String output) {
        long passed = output.lines().filter(l -> l.contains("PASSED")).count();
        long randomAccess = RANDOM_ACCESS.matcher(output).results().count();
        return passed + " HPL/PTRANS checks PASSED, " + randomAccess + " RandomAccess verifications passed, STREAM "
                + (output.contains("Solution Validates") ? "validates" : "does not validate") + ", Success=" + (output.contains("Success=1") ? 1 : 0);
    }
}
