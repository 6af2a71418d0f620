package io.mekha.agent;

import io.mekha.agent.qemu.QemuVm;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import io.mekha.qmp.QmpTimeoutException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * The last line of "no VM left paused": a VM that Mekha paused and could not get running again (its
 * {@code cont} failed, the monitor connection broke, QEMU stopped answering) is handed here, and the
 * guard keeps at it until QEMU itself says {@code running}: a new monitor connection when the old one is
 * closed or silent, any migration still going cancelled, {@code cont}, and {@code query-status} to
 * confirm, retried with a backoff for as long as the QEMU process lives. Whoever handed the VM over
 * hears each outcome (still paused and why, or running again), so that status never says a VM runs
 * while it is paused.
 */
final class ResumeGuard {
    private static final Logger LOG = Logger.getLogger(ResumeGuard.class);
    static final Duration FIRST_RETRY = Duration.ofMillis(100);
    static final Duration MAX_RETRY = Duration.ofSeconds(2);
    private static final Duration MONITOR_TIMEOUT = Duration.ofSeconds(5);

    private final String node;
    private final ScheduledExecutorService timers;
    private final ExecutorService workers;
    private final Map<String, Held> held = new ConcurrentHashMap<>();

    /** A VM the guard is getting running again. */
    private static final class Held {
        final QemuVm vm;
        final Instant since = Instant.now();
        final Consumer<String> report;
        final Runnable settled;
        int attempts;
        String last = "not tried yet";

        Held(QemuVm vm, Consumer<String> report, Runnable settled) {
            this.vm = vm;
            this.report = report;
            this.settled = settled;
        }
    }

    /** Attempts run on {@code workers} (a silent monitor holds one for seconds), spaced by {@code timers}. */
    ResumeGuard(String node, ScheduledExecutorService timers, ExecutorService workers) {
        this.node = node;
        this.timers = timers;
        this.workers = workers;
    }

    /**
     * Gets {@code vm} running again, now and then in the background until it does; {@code report} hears
     * "still paused: ..." after each failed attempt and the final word once it runs (or its QEMU is gone);
     * {@code settled} runs then, once. A VM already held is not held twice.
     */
    void ensureRunning(QemuVm vm, String why, Consumer<String> report, Runnable settled) {
        Held h = new Held(vm, report, settled);
        if (held.putIfAbsent(vm.name(), h) != null) {
            return;
        }
        LOG.warnf("VM '%s' on node %s: paused by Mekha and not resumed (%s); the agent keeps resuming it until QEMU runs it",
                vm.name(), node, why);
        workers.submit(() -> attempt(h, FIRST_RETRY));
    }

    /** VMs this node paused and has not got running yet, for status and metrics. */
    List<String> stillPaused() {
        return held.keySet().stream().sorted().toList();
    }

    private void attempt(Held h, Duration nextWait) {
        h.attempts++;
        if (!h.vm.isAlive()) {
            held.remove(h.vm.name(), h);
            h.report.accept("its QEMU exited while the agent was resuming it");
            h.settled.run();
            return;
        }
        try {
            if (runs(h.vm)) {
                held.remove(h.vm.name(), h);
                String done = "resumed by the agent's guard after " + h.attempts + " attempt(s), "
                        + Duration.between(h.since, Instant.now()).toMillis() + " ms after the resume failed";
                LOG.infof("VM '%s' on node %s: %s", h.vm.name(), node, done);
                h.report.accept(done);
                h.settled.run();
                return;
            }
            h.last = "QEMU did not report running after cont";
        } catch (QmpException | RuntimeException e) {
            h.last = e.getMessage();
        }
        h.report.accept("still paused: the agent keeps resuming it (attempt " + h.attempts + ": " + h.last + ")");
        Duration after = nextWait.multipliedBy(2).compareTo(MAX_RETRY) > 0 ? MAX_RETRY : nextWait.multipliedBy(2);
        timers.schedule(() -> workers.submit(() -> attempt(h, after)), nextWait.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** One try: a working monitor, nothing migrating, {@code cont}, and QEMU's own word that the VM runs. */
    private static boolean runs(QemuVm vm) throws QmpException {
        QmpClient qmp = vm.reconnectMonitor(MONITOR_TIMEOUT, false);
        String status;
        try {
            status = qmp.execute("query-status", null, MONITOR_TIMEOUT).path("status").asText();
        } catch (QmpTimeoutException silent) {
            qmp = vm.reconnectMonitor(MONITOR_TIMEOUT, true); // the connection is open but nobody answers on it
            status = qmp.execute("query-status", null, MONITOR_TIMEOUT).path("status").asText();
        }
        if (status.equals("running")) {
            return true;
        }
        String migration = qmp.execute("query-migrate", null, MONITOR_TIMEOUT).path("status").asText("none");
        if (List.of("setup", "active", "pre-switchover", "device", "wait-unplug", "postcopy-active").contains(migration)) {
            qmp.execute("migrate_cancel", null, MONITOR_TIMEOUT);
        }
        qmp.execute("cont", null, MONITOR_TIMEOUT);
        return qmp.execute("query-status", null, MONITOR_TIMEOUT).path("status").asText().equals("running");
    }
}
