package io.mekha.operator.service;

import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Clock;
import java.time.Duration;

/**
 * What the reconcilers work with, built once per operator process: the API client, where agents
 * are, the VM resolver, the source locks, the runs under way, status, events, metrics and the clock
 * (injectable, so schedules can be tested on a clock the test moves).
 *
 * @param observeEvery how often an in-progress resource is looked at again (deadlines, picked-up runs)
 */
public record OperatorServices(KubernetesClient client, AgentDirectory agents, VirtualClusterResolver resolver, SourceLocks locks,
                               ProtocolRuns runs, StatusWriter status, OperatorEvents events, OperatorMetrics metrics, Clock clock,
                               Duration observeEvery) {

    /** When to look at in-progress work again: every {@link #observeEvery}, or just after the deadline if that comes sooner. */
    public Duration nextLook(Duration untilDeadline) {
        boolean past = untilDeadline.isNegative() || untilDeadline.isZero();
        return past || untilDeadline.compareTo(observeEvery) > 0 ? observeEvery : untilDeadline.plusMillis(50);
    }

    public static OperatorServices create(KubernetesClient client, AgentDirectory agents, OperatorMetrics metrics, Clock clock,
                                          Duration observeEvery) {
        return new OperatorServices(client, agents, new VirtualClusterResolver(client), new SourceLocks(client), new ProtocolRuns(),
                new StatusWriter(client), new OperatorEvents(client, clock), metrics, clock, observeEvery);
    }
}
