package io.mekha.protocol;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/** Calls many agents at once and gathers every answer or failure. */
final class AgentCalls implements AutoCloseable {

    @FunctionalInterface
    interface Call<T> {
        T call(AgentClient agent) throws AgentCallException;
    }

    record Result<T>(T value, AgentCallException error) {}

    private final ExecutorService executor;

    AgentCalls(String threadName) {
        executor = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, threadName);
            t.setDaemon(true);
            return t;
        });
    }

    <T> Map<AgentClient, Result<T>> parallel(List<AgentClient> targets, Call<T> call) {
        Map<AgentClient, Future<T>> futures = new LinkedHashMap<>();
        for (AgentClient agent : targets) {
            futures.put(agent, executor.submit(() -> call.call(agent)));
        }
        return gather(futures);
    }

    /**
     * Like {@link #parallel}, at most {@code atOnce} calls in flight: for measurements that a crowd of calls would
     * distort (a clock exchange's round trips would time the coordinator's own queue, not the network).
     */
    <T> Map<AgentClient, Result<T>> parallel(List<AgentClient> targets, Call<T> call, int atOnce) {
        Semaphore slots = new Semaphore(atOnce);
        Map<AgentClient, Future<T>> futures = new LinkedHashMap<>();
        for (AgentClient agent : targets) {
            futures.put(agent, executor.submit(() -> {
                slots.acquire();
                try {
                    return call.call(agent);
                } finally {
                    slots.release();
                }
            }));
        }
        return gather(futures);
    }

    /** Every future's value or failure, in the map's order. */
    static <T> Map<AgentClient, Result<T>> gather(Map<AgentClient, Future<T>> futures) {
        Map<AgentClient, Result<T>> results = new LinkedHashMap<>();
        futures.forEach((agent, future) -> {
            try {
                results.put(agent, new Result<>(future.get(), null));
            } catch (ExecutionException e) {
                AgentCallException error = e.getCause() instanceof AgentCallException a ? a
                        : new AgentCallException(io.mekha.agent.api.ErrorKind.FAILED, 0, "agent " + agent.node() + ": " + e.getCause(), e.getCause());
                results.put(agent, new Result<>(null, error));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                results.put(agent, new Result<>(null, AgentCallException.unreachable("interrupted", e)));
            }
        });
        return results;
    }

    static <T> Map<AgentClient, T> requireAll(Map<AgentClient, Result<T>> results, String step) throws CheckpointFailedException {
        Map<AgentClient, T> values = new LinkedHashMap<>();
        for (var entry : results.entrySet()) {
            AgentCallException error = entry.getValue().error();
            if (error != null) {
                String what = error.unreachable() ? "agent on node " + entry.getKey().node() + " unreachable during " + step
                        : step + " refused by node " + entry.getKey().node();
                throw new CheckpointFailedException(what + ": " + error.getMessage(), error);
            }
            values.put(entry.getKey(), entry.getValue().value());
        }
        return values;
    }

    /** The shared pool, for work chained on futures. */
    ExecutorService executor() {
        return executor;
    }

    /** Runs one call on the shared pool. */
    <T> Future<T> submit(java.util.concurrent.Callable<T> task) {
        return executor.submit(task);
    }

    @Override
    public void close() {
        executor.shutdownNow();
    }
}
