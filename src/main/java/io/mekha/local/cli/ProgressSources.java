package io.mekha.local.cli;

import io.mekha.agent.api.AgentDtos.CheckpointStatus;
import io.mekha.agent.api.AgentDtos.TransferProgress;
import io.mekha.agent.api.AgentDtos.VmCheckpointStatus;
import io.mekha.agent.api.VmPhase;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

/** What the CLI's progress lines read: the agents' transfer meters, and a checkpoint's live stage from its status. */
final class ProgressSources {
    private ProgressSources() {}

    /**
     * The transfers of checkpoint {@code checkpoint} whose purpose {@code purposes} takes ("flush to L2", "verify at L1",
     * "load from L1"), over every agent: {@code parts} of them are expected in all (one per VM and purpose). Transfers that
     * had ended before this source was made (an earlier flush or restore of the same checkpoint) are left out.
     */
    static ProgressDisplay.Source transfers(List<AgentClient> agents, String checkpoint, Predicate<String> purposes, int parts)
            throws AgentCallException {
        Set<String> earlier = new HashSet<>();
        for (TransferProgress t : read(agents, checkpoint)) {
            earlier.add(key(t));
        }
        return () -> {
            List<TransferProgress> seen = new ArrayList<>();
            for (TransferProgress t : read(agents, checkpoint)) {
                if (purposes.test(t.purpose()) && !earlier.contains(key(t))) {
                    seen.add(t);
                }
            }
            if (seen.isEmpty()) {
                return null;
            }
            int expected = Math.max(parts, seen.size());
            long bytes = seen.stream().mapToLong(TransferProgress::bytesMoved).sum();
            double done = seen.stream().mapToDouble(t -> Math.max(0, t.overall())).sum() / expected;
            // no percentage only while nothing has a known share yet (the one transfer seen is a shadow without an estimate)
            boolean unknown = seen.stream().allMatch(t -> t.finishedAt() == null && t.overall() < 0);
            long finished = seen.stream().filter(t -> t.finishedAt() != null).count();
            List<String> failed = seen.stream().filter(t -> t.error() != null).map(t -> t.vm() + " failed").toList();
            TransferProgress now = seen.stream().filter(t -> t.finishedAt() == null).max(Comparator.comparing(TransferProgress::startedAt))
                    .orElse(null);
            StringBuilder what = new StringBuilder().append(finished).append(" of ").append(expected).append(" done");
            if (now != null) {
                what.append(", ").append(now.vm()).append(' ').append(verb(now.activity()));
            }
            failed.forEach(f -> what.append(", ").append(f));
            return new ProgressDisplay.Reading(what.toString(), bytes, "moved", unknown ? -1 : done, null,
                    finished >= expected);
        };
    }

    /**
     * The live stage of checkpoint {@code checkpoint} on {@code agent}: VMs still live, the most passes, bytes sent to the
     * level-0 copies, and the time left to the live stage's bound ({@code bound} from when the first VM went live).
     */
    static ProgressDisplay.Source liveStage(AgentClient agent, String checkpoint, Duration bound) {
        long[] liveSince = {Long.MIN_VALUE};
        return () -> {
            CheckpointStatus status;
            try {
                status = agent.status(checkpoint);
            } catch (AgentCallException e) {
                return null; // not prepared yet, or already ended: nothing to show
            }
            List<VmCheckpointStatus> vms = status.vms();
            long live = vms.stream().filter(v -> v.phase() == VmPhase.LIVE).count();
            long liveOrDone = vms.stream().filter(v -> v.phase() == VmPhase.LIVE || v.phase() == VmPhase.LIVE_DONE).count();
            if (liveOrDone == 0 && liveSince[0] == Long.MIN_VALUE) {
                return null;
            }
            if (liveSince[0] == Long.MIN_VALUE) {
                liveSince[0] = System.nanoTime();
            }
            int passes = vms.stream().mapToInt(VmCheckpointStatus::passes).max().orElse(0);
            long bytes = vms.stream().mapToLong(VmCheckpointStatus::bytesTransferred).sum();
            boolean ended = liveOrDone == 0;
            Duration left = bound.minusNanos(System.nanoTime() - liveSince[0]);
            String what = ended ? vms.size() + " VMs past their live stage, " + passes + " passes at most"
                    : vms.size() + " VMs, " + (liveOrDone - live) + " at their local end, pass " + passes;
            return new ProgressDisplay.Reading(what, bytes, "sent", -1, ended || left.isNegative() ? null : left, ended);
        };
    }

    private static List<TransferProgress> read(List<AgentClient> agents, String checkpoint) throws AgentCallException {
        List<TransferProgress> all = new ArrayList<>();
        for (AgentClient agent : agents) {
            all.addAll(agent.progress(checkpoint));
        }
        return all;
    }

    private static String key(TransferProgress t) {
        return t.node() + "/" + t.vm() + "/" + t.purpose() + "/" + t.startedAt();
    }

    /** "verifying vm2.zst at /l2/ring/cp1/vm2.zst" → "verifying": the place is in the step lines and the report. */
    private static String verb(String activity) {
        int space = activity.indexOf(' ');
        String first = space < 0 ? activity : activity.substring(0, space);
        return activity.startsWith("saving the disk") ? "saving its disk" : first;
    }
}
