package io.mekha.local.cli;

/** The {@code mekha} command line as a plain main class, for tests that run it as a process of its own (under a pseudo-terminal). */
public final class CliMain {
    private CliMain() {}

    public static void main(String[] args) {
        System.exit(CliSetup.create().execute(args));
    }
}
