package io.mekha.operator.service;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The protocol runs this operator process has under way, by resource UID. Reconcilers start a
 * run and return; they never wait on one. A run that is absent for a resource whose status says
 * InProgress was started by an operator process that is gone, and is picked up.
 */
public final class ProtocolRuns implements AutoCloseable {
    private final ExecutorService pool;
    /** A run and whether its code has returned: a cancelled Future reports done while its thread still cleans up. */
    private record Run(Future<?> future, java.util.concurrent.CountDownLatch finished) {
        boolean active() {
            return finished.getCount() > 0;
        }
    }

    private final Map<String, Run> runs = new ConcurrentHashMap<>();
    private final Map<String, Cancel> cancelReasons = new ConcurrentHashMap<>();

    /** Why a run was cancelled: a condition reason and a message for people. */
    public record Cancel(String reason, String message) {}

    public ProtocolRuns() {
        AtomicInteger n = new AtomicInteger();
        this.pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "mekha-run-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /** Runs are known by kind, namespace, name and UID: a recreated object is a new run. */
    public static String key(io.fabric8.kubernetes.api.model.HasMetadata resource) {
        return resource.getKind() + "/" + resource.getMetadata().getNamespace() + "/" + resource.getMetadata().getName() + "/"
                + resource.getMetadata().getUid();
    }

    /** Starts {@code work} for {@code uid} unless a run for it is already under way; returns whether it started one. */
    public synchronized boolean start(String uid, Runnable work) {
        Run running = runs.get(uid);
        if (running != null && running.active()) {
            return false;
        }
        cancelReasons.remove(uid);
        java.util.concurrent.CountDownLatch finished = new java.util.concurrent.CountDownLatch(1);
        Future<?> future = pool.submit(() -> {
            try {
                work.run();
            } finally {
                finished.countDown();
            }
        });
        runs.put(uid, new Run(future, finished));
        return true;
    }

    public boolean running(String uid) {
        Run run = runs.get(uid);
        return run != null && run.active();
    }

    /** Interrupts the run for {@code uid}; the run reads {@link #cancelled} to say why it stopped. */
    public void cancel(String uid, String reason, String message) {
        Run run = runs.get(uid);
        if (run != null && run.active()) {
            cancelReasons.put(uid, new Cancel(reason, message));
            run.future().cancel(true);
        }
    }

    public Cancel cancelled(String uid) {
        return cancelReasons.get(uid);
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
