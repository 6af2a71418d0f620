package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.storage.StorageLevel;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The flush schedule as the pure function it is: a flush of many VMs over several nodes, simulated with random write
 * times, never runs more writes on a node's disk or on the shared target than its limit, fills the limit when there
 * is work, keeps every L2 copy behind its L1 write, and starts each target's writes in the plan's order.
 */
@Tag("fast")
class FlushScheduleTest {

    /** What one simulated flush did. */
    private record Run(Map<String, Integer> peak, Map<String, List<FlushSchedule.Job>> startOrder, Map<Integer, Double> started,
                       Map<Integer, Double> finished) {}

    private static Run simulate(List<FlushSchedule.Job> jobs, FlushSchedule.Limits limits, Random random) {
        List<FlushSchedule.Job> pending = new ArrayList<>(jobs);
        Map<String, Integer> running = new HashMap<>();
        Map<String, Integer> peak = new HashMap<>();
        Set<Integer> done = new HashSet<>();
        Map<String, List<FlushSchedule.Job>> startOrder = new HashMap<>();
        Map<Integer, Double> started = new HashMap<>();
        Map<Integer, Double> finished = new HashMap<>();
        PriorityQueue<double[]> inFlight = new PriorityQueue<>((a, b) -> Double.compare(a[0], b[0]));
        double now = 0;
        while (done.size() < jobs.size()) {
            for (FlushSchedule.Job job : FlushSchedule.startable(pending, done, running, limits)) {
                pending.remove(job);
                int n = running.merge(job.slot(), 1, Integer::sum);
                peak.merge(job.slot(), n, Math::max);
                startOrder.computeIfAbsent(job.slot(), k -> new ArrayList<>()).add(job);
                started.put(job.id(), now);
                inFlight.add(new double[] {now + 0.1 + random.nextDouble() * job.size() / 1e8, job.id()});
            }
            assertThat(inFlight).as("something runs while work is left (no deadlock)").isNotEmpty();
            double[] next = inFlight.poll();
            now = next[0];
            FlushSchedule.Job ended = jobs.stream().filter(j -> j.id() == (int) next[1]).findFirst().orElseThrow();
            running.merge(ended.slot(), -1, Integer::sum);
            done.add(ended.id());
            finished.put(ended.id(), now);
        }
        return new Run(peak, startOrder, started, finished);
    }

    private static List<FlushSchedule.Vm> cluster(Random random, int nodes, int vmsPerNode) {
        List<FlushSchedule.Vm> vms = new ArrayList<>();
        for (int n = 0; n < nodes; n++) {
            for (int v = 0; v < vmsPerNode; v++) {
                vms.add(new FlushSchedule.Vm("vm" + n + "-" + v, "node" + n, (64L + random.nextInt(960)) << 20));
            }
        }
        return vms;
    }

    @Test
    void writersNeverExceedTheirLimitsAndFillThemWhenThereIsWork() {
        Random random = new Random(7);
        for (int t = 0; t < 200; t++) {
            int trial = t;
            int perNode = 1 + random.nextInt(3);
            int shared = 1 + random.nextInt(4);
            List<FlushSchedule.Vm> vms = cluster(random, 1 + random.nextInt(4), 1 + random.nextInt(6));
            List<FlushSchedule.Job> jobs = FlushSchedule.jobs(vms, List.of(StorageLevel.L1, StorageLevel.L2), FlushPlan.Order.SMALLEST_FIRST);
            Run run = simulate(jobs, new FlushSchedule.Limits(perNode, shared), random);
            run.peak().forEach((slot, peak) -> assertThat(peak).as("trial %d: writers at %s", trial, slot)
                    .isLessThanOrEqualTo(slot.startsWith("L1") ? perNode : shared));
            // the first writes of each node start together, up to the limit: the limit is used, not just respected
            for (String node : vms.stream().map(FlushSchedule.Vm::node).distinct().toList()) {
                long onNode = vms.stream().filter(v -> v.node().equals(node)).count();
                assertThat(run.peak().get("L1 node " + node)).as("trial %d: %s", trial, node).isEqualTo((int) Math.min(perNode, onNode));
            }
        }
    }

    @Test
    void anL2CopyStartsOnlyOnceItsL1WriteIsDone() {
        Random random = new Random(11);
        for (int trial = 0; trial < 200; trial++) {
            List<FlushSchedule.Job> jobs = FlushSchedule.jobs(cluster(random, 3, 4), List.of(StorageLevel.L1, StorageLevel.L2),
                    FlushPlan.Order.LARGEST_FIRST);
            Run run = simulate(jobs, new FlushSchedule.Limits(2, 3), random);
            for (FlushSchedule.Job job : jobs) {
                if (job.level() == StorageLevel.L2) {
                    assertThat(job.after()).as("an L2 write copies from its VM's L1 write").isNotNull();
                    assertThat(run.started().get(job.id())).as("%s L2 started after its L1 finished", job.vm())
                            .isGreaterThanOrEqualTo(run.finished().get(job.after()));
                }
            }
        }
    }

    @Test
    void eachTargetsWritesStartInThePlansOrderAmongThoseReadyToStart() {
        Random random = new Random(3);
        for (FlushPlan.Order order : FlushPlan.Order.values()) {
            for (int trial = 0; trial < 100; trial++) {
                List<FlushSchedule.Vm> vms = cluster(random, 2, 5);
                List<FlushSchedule.Job> jobs = FlushSchedule.jobs(vms, List.of(StorageLevel.L1), order);
                Run run = simulate(jobs, new FlushSchedule.Limits(1 + random.nextInt(2), 2), random);
                run.startOrder().forEach((slot, started) -> {
                    List<Long> sizes = started.stream().map(FlushSchedule.Job::size).toList();
                    List<String> names = started.stream().map(FlushSchedule.Job::vm).toList();
                    switch (order) {
                        case SMALLEST_FIRST -> assertThat(sizes).as("%s %s", order, slot).isSorted();
                        case LARGEST_FIRST -> assertThat(sizes.stream().map(s -> -s).toList()).as("%s %s", order, slot).isSorted();
                        case AS_LISTED -> assertThat(names).as("%s %s", order, slot).isEqualTo(vms.stream()
                                .filter(v -> slot.equals("L1 node " + v.node())).map(FlushSchedule.Vm::name).toList());
                    }
                });
            }
        }
    }

    @Test
    void onlyTheLevelsAskedForAreWrittenOncePerVm() {
        List<FlushSchedule.Vm> vms = List.of(new FlushSchedule.Vm("a", "n1", 3), new FlushSchedule.Vm("b", "n2", 1));
        assertThat(FlushSchedule.jobs(vms, List.of(StorageLevel.L2), FlushPlan.Order.SMALLEST_FIRST))
                .extracting(FlushSchedule.Job::vm, FlushSchedule.Job::level, FlushSchedule.Job::after)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("b", StorageLevel.L2, null),
                        org.assertj.core.groups.Tuple.tuple("a", StorageLevel.L2, null));
        assertThat(FlushSchedule.jobs(vms, List.of(StorageLevel.L1, StorageLevel.L2), FlushPlan.Order.AS_LISTED))
                .extracting(FlushSchedule.Job::vm, FlushSchedule.Job::slot)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("a", "L1 node n1"), org.assertj.core.groups.Tuple.tuple("a", "L2"),
                        org.assertj.core.groups.Tuple.tuple("b", "L1 node n2"), org.assertj.core.groups.Tuple.tuple("b", "L2"));
    }
}
