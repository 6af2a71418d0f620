package io.mekha.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/** After each test: no QEMU started by this JVM may still be running (every test cleans up after itself). */
public final class NoQemuLeftBehind implements AfterEachCallback {

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        List<ProcessHandle> left = qemuDescendants();
        for (int i = 0; i < 50 && !left.isEmpty(); i++) {
            TimeUnit.MILLISECONDS.sleep(100); // a kill in flight is not a leak
            left = qemuDescendants();
        }
        List<String> described = left.stream()
                .map(p -> p.pid() + " " + p.info().commandLine().orElse("?"))
                .toList();
        left.forEach(ProcessHandle::destroyForcibly);
        assertThat(described).as("QEMU processes left running by " + context.getDisplayName()).isEmpty();
    }

    public static List<ProcessHandle> qemuDescendants() {
        return ProcessHandle.current().descendants()
                .filter(ProcessHandle::isAlive)
                .filter(p -> p.info().command().map(c -> c.contains("qemu-system")).orElse(false)
                        || p.info().commandLine().map(c -> c.contains("qemu-system")).orElse(false))
                .toList();
    }
}
