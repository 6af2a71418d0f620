package io.mekha.agent.level0;

import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.qmp.QmpEventQueue;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.util.Set;

/**
 * Watching a QEMU started with {@code -incoming} take in a VM's state: on its MIGRATION events
 * (the {@code events} capability, set before the incoming migration starts), with a look now and
 * then in case one was missed.
 */
public final class IncomingState {
    private static final Duration EVENT_WAIT = Duration.ofMillis(50);
    /** Completed but not yet paused: QEMU sets the run state in the same step, a moment later. */
    private static final Duration SETTLE = Duration.ofMillis(1);

    private IncomingState() {}

    /**
     * Returns once {@code vm} has loaded the whole state and is paused; otherwise returns why not:
     * the reason, for the caller to put in its own words, or null on success.
     */
    public static String awaitLoaded(QemuVm vm, long deadline) throws QmpException, InterruptedException {
        try (QmpEventQueue events = vm.qmp().listen(Set.of("MIGRATION"))) {
            while (true) {
                if (!vm.isAlive()) {
                    return "its QEMU exited while loading the state";
                }
                String run = vm.qmp().execute("query-status").path("status").asText();
                MigrationStatus incoming = MigrationStatus.parse(vm.qmp().execute("query-migrate"));
                if (incoming.failed()) {
                    return "QEMU failed to load the state: " + incoming.errorDescription();
                }
                if (!run.equals("inmigrate") && incoming.completed()) {
                    return run.equals("paused") ? null : "QEMU is '" + run + "' after loading, expected paused";
                }
                if (System.nanoTime() > deadline) {
                    return "QEMU did not finish loading the state in time";
                }
                if (incoming.completed()) {
                    Thread.sleep(SETTLE.toMillis());
                } else {
                    events.poll(EVENT_WAIT);
                }
            }
        }
    }
}
