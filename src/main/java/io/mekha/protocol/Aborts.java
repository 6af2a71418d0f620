package io.mekha.protocol;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.jboss.logging.Logger;

/** Aborting a checkpoint on every agent that may hold part of it; each resumes every VM it paused. */
final class Aborts {
    private static final Logger LOG = Logger.getLogger(Aborts.class);

    /** What an abort reached: every agent, or not those listed (with why). */
    record Outcome(List<String> unreached) {
        boolean everywhere() {
            return unreached.isEmpty();
        }

        @Override
        public String toString() {
            return everywhere() ? "aborted on every agent: every VM runs and no shadow is kept"
                    : "the abort did not reach " + unreached + "; those agents resume any VM they paused by themselves after the pause deadline";
        }
    }

    private final AgentCalls calls;

    Aborts(AgentCalls calls) {
        this.calls = calls;
    }

    /**
     * Aborts checkpoint {@code id} on every target; says whether every VM is known to run again. Runs with the thread's
     * interrupt cleared (and restored after): an interrupt is often why we abort, and left set it would fail every abort
     * call before it leaves. An agent that holds no such checkpoint has nothing to abort.
     */
    Outcome abortAll(String id, Collection<AgentClient> targets, String reason) {
        return abortAll(id, targets, reason, false);
    }

    /**
     * {@link #abortAll}, then the checkpoint discarded on every target: for a failure after the resume (a background
     * snapshot's copy that broke while the VC ran), when the VMs whose copies completed keep them past an abort; the
     * checkpoint as a whole failed, so none of them is kept.
     */
    Outcome abortAndDiscardAll(String id, Collection<AgentClient> targets, String reason) {
        return abortAll(id, targets, reason, true);
    }

    private Outcome abortAll(String id, Collection<AgentClient> targets, String reason, boolean discard) {
        boolean interrupted = Thread.interrupted();
        try {
            List<String> failed = new ArrayList<>();
            calls.parallel(List.copyOf(targets), agent -> {
                var status = agent.abort(id, reason);
                if (discard) {
                    agent.discard(id);
                }
                return status;
            }).forEach((agent, result) -> {
                if (result.error() != null && !result.error().notFound()) {
                    LOG.warnf("abort of checkpoint %s on node %s failed: %s", id, agent.node(), result.error().getMessage());
                    failed.add("node " + agent.node() + ": " + result.error().getMessage());
                }
            });
            return new Outcome(failed);
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
