package io.mekha.protocol;

import io.mekha.storage.StorageLevel;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The flush scheduler's decisions, as pure functions of the writes, the writer limits and the
 * order: which writes a flush makes ({@link #jobs}), and which may start now ({@link #startable}).
 * Writes to one node's disk and to the shared target are bounded so that they never contend beyond
 * what the target absorbs; an L2 write that copies from L1 waits for it.
 */
public final class FlushSchedule {
    private FlushSchedule() {}

    /**
     * One VM's write to one level.
     *
     * @param size the VM's expected state size (bytes), for the order
     * @param after the id of the write this one copies from (L2 from L1), or null
     */
    public record Job(int id, String vm, String node, StorageLevel level, long size, Integer after) {
        /** The target this write competes for: one node's disk ("L1 node n1"), or the shared target ("L2"). */
        public String slot() {
            return level == StorageLevel.L1 ? "L1 node " + node : "L2";
        }
    }

    /** How many writes may run at once on one node's disk and on the shared target. */
    public record Limits(int perNodeDisk, int sharedTarget) {
        public Limits {
            if (perNodeDisk < 1 || sharedTarget < 1) {
                throw new IllegalArgumentException("writer limits must be at least 1");
            }
        }

        int of(Job job) {
            return job.level() == StorageLevel.L1 ? perNodeDisk : sharedTarget;
        }
    }

    /** A VM to write: its name, node and expected size. */
    public record Vm(String name, String node, long size) {}

    /**
     * Every write of a flush, in the order they should start: for each VM its L1 write (if asked) and its L2 write (if
     * asked; after the L1 write when both are), sorted by {@code order} (stable: a VM's L1 write stays before its L2 write).
     */
    public static List<Job> jobs(List<Vm> vms, List<StorageLevel> levels, FlushPlan.Order order) {
        List<Job> jobs = new ArrayList<>();
        for (Vm vm : vms) {
            Integer l1 = null;
            if (levels.contains(StorageLevel.L1)) {
                l1 = jobs.size();
                jobs.add(new Job(l1, vm.name(), vm.node(), StorageLevel.L1, vm.size(), null));
            }
            if (levels.contains(StorageLevel.L2)) {
                jobs.add(new Job(jobs.size(), vm.name(), vm.node(), StorageLevel.L2, vm.size(), l1));
            }
        }
        Comparator<Job> by = switch (order) {
            case SMALLEST_FIRST -> Comparator.comparingLong(Job::size);
            case LARGEST_FIRST -> Comparator.comparingLong((Job j) -> j.size()).reversed();
            case AS_LISTED -> (a, b) -> 0;
        };
        List<Job> ordered = new ArrayList<>(jobs);
        ordered.sort(by);
        return List.copyOf(ordered);
    }

    /**
     * The writes to start now, in order: from {@code pending} (not started, in start order), each whose predecessor is
     * in {@code done}, while its slot has room beside what already {@code running} there.
     */
    public static List<Job> startable(List<Job> pending, Set<Integer> done, Map<String, Integer> running, Limits limits) {
        Map<String, Integer> busy = new HashMap<>(running);
        List<Job> start = new ArrayList<>();
        for (Job job : pending) {
            if (job.after() != null && !done.contains(job.after())) {
                continue;
            }
            int now = busy.getOrDefault(job.slot(), 0);
            if (now >= limits.of(job)) {
                continue;
            }
            busy.put(job.slot(), now + 1);
            start.add(job);
        }
        return start;
    }
}
