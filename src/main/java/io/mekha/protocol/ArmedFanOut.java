package io.mekha.protocol;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;

/**
 * Tells every agent a rendezvous instant in about the time of one small write per agent. From the
 * live stage on, each agent has the call open with no body yet ({@link ArmedCall}), so nothing is
 * opened near the cut; once the instant is chosen the coordinator writes it into each of them, one
 * after the other on its own thread, and only then reads the answers. An agent whose call could not
 * be opened in time gets an ordinary call instead.
 *
 * <p>How long the writes take is measured each time and sizes the next lead ({@link #writeOut}).
 */
final class ArmedFanOut {
    /** What a write is assumed to cost before one has been measured (loopback here: 25–100 µs, the receiver's wake-up included). */
    private static final Duration FIRST_WRITE_GUESS = Duration.ofNanos(100_000);

    /** The ordinary call for an agent whose armed one is missing. */
    @FunctionalInterface
    interface Fallback {
        CheckpointStatus call(AgentClient agent, String id, Instant at) throws AgentCallException;
    }

    private final AgentCalls calls;
    private final String action;
    private final String query;
    private final Duration callTimeout;
    private final Fallback fallback;
    private volatile long perWriteNanos = FIRST_WRITE_GUESS.toNanos();

    /**
     * @param action the agent's checkpoint action ({@code suspend}, {@code resume})
     * @param query appended to its path (may be empty)
     */
    ArmedFanOut(AgentCalls calls, String action, String query, Duration callTimeout, Fallback fallback) {
        this.calls = calls;
        this.action = action;
        this.query = query;
        this.callTimeout = callTimeout;
        this.fallback = fallback;
    }

    /** Opens the call to each of {@code agents} for checkpoint {@code id}, in the background. */
    Armed arm(String id, List<AgentClient> agents) {
        return new Armed(id, agents);
    }

    /** How long writing an instant to {@code agents} agents is expected to take, from the last time it was measured. */
    Duration writeOut(int agents) {
        return Duration.ofNanos(perWriteNanos * agents);
    }

    /** One checkpoint's calls, armed and not yet sent. */
    final class Armed implements AutoCloseable {
        private final Map<AgentClient, Future<ArmedCall>> arming = new LinkedHashMap<>();
        /** Every call opened, until sent or closed; guarded by this. */
        private final List<ArmedCall> opened = new ArrayList<>();
        private final String id;
        private boolean sent;
        private boolean closed;

        private Armed(String id, List<AgentClient> agents) {
            this.id = id;
            for (AgentClient agent : agents) {
                arming.put(agent, CompletableFuture.supplyAsync(() -> open(id, agent), calls.executor()));
            }
        }

        private ArmedCall open(String id, AgentClient agent) {
            ArmedCall armed;
            try {
                armed = agent.arm(id, action, query, callTimeout);
            } catch (AgentCallException e) {
                throw new CompletionException(e);
            }
            synchronized (this) {
                if (!closed) {
                    opened.add(armed);
                    return armed;
                }
            }
            armed.cancel(); // opened after an abort
            return null;
        }

        /**
         * Writes the instant ({@code at} here, {@code atOnAgent} on each agent's clock) to every agent and returns their
         * answers. The armed calls are written first, back to back from this thread; agents whose call is still being
         * opened, or could not be, are then called in parallel. With {@code readFromInstant}, the answers are read only
         * from {@code at} on, so that no reader takes a core before it.
         */
        Map<AgentClient, AgentCalls.Result<CheckpointStatus>> send(Instant at, Function<AgentClient, Instant> atOnAgent,
                                                                   boolean readFromInstant) {
            synchronized (this) {
                sent = true;
            }
            Map<AgentClient, ArmedCall> written = new LinkedHashMap<>();
            List<AgentClient> late = new ArrayList<>();
            long started = System.nanoTime();
            for (var e : arming.entrySet()) {
                ArmedCall armed = ready(e.getValue());
                if (armed == null) {
                    late.add(e.getKey());
                    continue;
                }
                try {
                    armed.send(atOnAgent.apply(e.getKey()));
                    written.put(e.getKey(), armed);
                } catch (AgentCallException broken) {
                    late.add(e.getKey()); // the connection broke since it was opened: an ordinary call may still get through
                }
            }
            if (!written.isEmpty()) {
                perWriteNanos = (System.nanoTime() - started) / written.size();
            }
            Map<AgentClient, Future<CheckpointStatus>> answers = new LinkedHashMap<>();
            for (AgentClient agent : late) {
                Future<ArmedCall> arm = arming.get(agent);
                answers.put(agent, calls.submit(() -> {
                    ArmedCall armed = awaitArm(arm);
                    if (armed != null) {
                        try {
                            armed.send(atOnAgent.apply(agent));
                            return armed.reply();
                        } catch (AgentCallException broken) {
                            // an ordinary call, then
                        }
                    }
                    return fallback.call(agent, id, atOnAgent.apply(agent));
                }));
            }
            if (readFromInstant) {
                long untilAt = Duration.between(Instant.now(), at).toNanos();
                if (untilAt > 0) {
                    LockSupport.parkNanos(untilAt);
                }
            }
            written.forEach((agent, armed) -> answers.put(agent, calls.submit(armed::reply)));
            Map<AgentClient, AgentCalls.Result<CheckpointStatus>> results = AgentCalls.gather(answers);
            Map<AgentClient, AgentCalls.Result<CheckpointStatus>> ordered = new LinkedHashMap<>();
            arming.keySet().forEach(agent -> ordered.put(agent, results.get(agent)));
            return ordered;
        }

        /** Closes every call not sent (an abort), also those still being opened: their agents read a broken request and do nothing. */
        @Override
        public void close() {
            List<ArmedCall> unsent;
            synchronized (this) {
                closed = true;
                unsent = sent ? List.of() : List.copyOf(opened);
            }
            arming.values().forEach(f -> f.cancel(true));
            unsent.forEach(ArmedCall::cancel);
        }
    }

    private static ArmedCall ready(Future<ArmedCall> arm) {
        if (!arm.isDone() || arm.isCancelled()) {
            return null;
        }
        try {
            return arm.get(); // done: does not block
        } catch (ExecutionException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    private static ArmedCall awaitArm(Future<ArmedCall> arm) throws InterruptedException {
        try {
            return arm.get();
        } catch (ExecutionException e) {
            return null;
        }
    }
}
