package io.mekha.local.cli;

import io.mekha.local.InvalidSpecException;
import picocli.CommandLine.Option;

/** {@code --progress}: how long steps show their progress. */
final class ProgressOption {

    @Option(names = "--progress", defaultValue = "auto", paramLabel = "auto|terminal|plain|none",
            description = "progress of the live stage, flushes and restores: a line redrawn in place on a terminal, plain lines"
                    + " every few seconds otherwise (default: ${DEFAULT-VALUE}: a terminal when the console is one)")
    String progress;

    ProgressDisplay.Style style() throws InvalidSpecException {
        try {
            return ProgressDisplay.Style.parse(progress);
        } catch (IllegalArgumentException e) {
            throw new InvalidSpecException(e.getMessage());
        }
    }
}
