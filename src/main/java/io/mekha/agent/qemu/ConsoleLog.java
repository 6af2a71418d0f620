package io.mekha.agent.qemu;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/** A VM's serial console as QEMU writes it to a file: read it, or wait for a line. */
public record ConsoleLog(Path file) {

    /** Every complete line written so far (a trailing partial line is left out). */
    public List<String> lines() {
        String text = text();
        int end = text.lastIndexOf('\n');
        if (end < 0) {
            return List.of();
        }
        return text.substring(0, end).replace("\r", "").lines().toList();
    }

    public String text() {
        try {
            return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return "";
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read console " + file, e);
        }
    }

    /** The last {@code n} lines, for error messages. */
    public String tail(int n) {
        List<String> all = text().replace("\r", "").lines().toList();
        return String.join("\n", all.subList(Math.max(0, all.size() - n), all.size()));
    }

    /** Waits for a complete line matching {@code test}; empty when {@code timeout} passes first. */
    public Optional<String> awaitLine(Predicate<String> test, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        do {
            for (String line : lines()) {
                if (test.test(line)) {
                    return Optional.of(line);
                }
            }
            Thread.sleep(50);
        } while (System.nanoTime() < deadline);
        return Optional.empty();
    }
}
