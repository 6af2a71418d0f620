package io.mekha.local;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** A plain-text table for reports a person reads in a terminal: columns padded, numbers right-aligned. */
public final class TextTable {
    private final List<String> headers;
    private final List<List<String>> rows = new ArrayList<>();

    public TextTable(String... headers) {
        this.headers = List.of(headers);
    }

    public TextTable row(Object... cells) {
        if (cells.length != headers.size()) {
            throw new IllegalArgumentException("row has " + cells.length + " cells, table has " + headers.size() + " columns");
        }
        rows.add(Arrays.stream(cells).map(c -> c == null ? "-" : c.toString()).toList());
        return this;
    }

    public String render() {
        int[] width = new int[headers.size()];
        for (int c = 0; c < width.length; c++) {
            width[c] = headers.get(c).length();
            for (List<String> row : rows) {
                width[c] = Math.max(width[c], row.get(c).length());
            }
        }
        StringBuilder out = new StringBuilder();
        line(out, headers, width, false);
        for (int c = 0; c < width.length; c++) {
            out.append(c == 0 ? "" : "  ").append("-".repeat(width[c]));
        }
        out.append('\n');
        for (List<String> row : rows) {
            line(out, row, width, true);
        }
        return out.toString();
    }

    private static void line(StringBuilder out, List<String> cells, int[] width, boolean alignNumbers) {
        for (int c = 0; c < width.length; c++) {
            String cell = cells.get(c);
            boolean right = alignNumbers && c > 0 && !cell.isEmpty() && (Character.isDigit(cell.charAt(0)) || cell.charAt(0) == '-');
            String padded = right ? " ".repeat(width[c] - cell.length()) + cell : cell + " ".repeat(width[c] - cell.length());
            out.append(c == 0 ? "" : "  ").append(padded);
        }
        int end = out.length();
        while (end > 0 && out.charAt(end - 1) == ' ') {
            end--;
        }
        out.setLength(end);
        out.append('\n');
    }

    /** Milliseconds with one decimal, e.g. {@code 68.9 ms}; {@code -} for null. */
    public static String ms(Duration d) {
        return d == null ? "-" : String.format("%.1f ms", d.toNanos() / 1e6);
    }

    public static String seconds(Duration d) {
        return d == null ? "-" : String.format("%.2f s", d.toNanos() / 1e9);
    }

    public static String mib(long bytes) {
        return String.format("%.1f MiB", bytes / 1048576.0);
    }
}
