package io.mekha.qmp;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * The events one listener asked for, queued in arrival order. Created by
 * {@link QmpClient#listen(Set)}; close it to stop receiving.
 */
public final class QmpEventQueue implements AutoCloseable {
    private final Set<String> names;
    private final LinkedBlockingQueue<QmpEvent> events = new LinkedBlockingQueue<>();
    private final Runnable onClose;

    QmpEventQueue(Set<String> names, Runnable onClose) {
        this.names = Set.copyOf(names);
        this.onClose = onClose;
    }

    boolean wants(QmpEvent event) {
        return names.isEmpty() || names.contains(event.name());
    }

    void offer(QmpEvent event) {
        events.offer(event);
    }

    /** The next event, or null when none arrives within {@code timeout}. */
    public QmpEvent poll(Duration timeout) throws InterruptedException {
        return events.poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Waits for the first event matching {@code test}, dropping the others before it. */
    public QmpEvent await(Predicate<QmpEvent> test, Duration timeout, String what)
            throws QmpTimeoutException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            long left = deadline - System.nanoTime();
            QmpEvent event = left > 0 ? events.poll(left, TimeUnit.NANOSECONDS) : null;
            if (event == null) {
                throw new QmpTimeoutException("no QMP event " + what + " within " + timeout);
            }
            if (test.test(event)) {
                return event;
            }
        }
    }

    /** Drops every queued event. */
    public void clear() {
        events.clear();
    }

    @Override
    public void close() {
        onClose.run();
    }
}
