package io.mekha.operator;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.inbound.SimpleInboundEventSource;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.operator.service.KubeVirt;
import java.util.ArrayList;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * What a schedule with automatic recovery watches besides itself: the VMs' instances, their launcher pods and the
 * nodes. Any change to one makes every such schedule of its namespace look again (every one, for a node). The
 * informers name KubeVirt's kind explicitly (no API discovery) and start in the background: a cluster where one cannot
 * be listed yet (KubeVirt not installed, RBAC missing) keeps the operator running, says so in its log, and the schedules
 * still look at their VMs every observation period.
 */
final class RecoveryEvents extends SimpleInboundEventSource<VirtualClusterCheckpointSchedule> {
    private static final Logger LOG = Logger.getLogger(RecoveryEvents.class);

    private final KubernetesClient client;
    private final EventSourceContext<VirtualClusterCheckpointSchedule> context;
    private final List<SharedIndexInformer<?>> informers = new ArrayList<>();

    RecoveryEvents(EventSourceContext<VirtualClusterCheckpointSchedule> context) {
        super("recovery-watch");
        this.context = context;
        this.client = context.getClient();
    }

    @Override
    public synchronized void start() {
        super.start();
        watch("VirtualMachineInstances", client.genericKubernetesResources(KubeVirt.INSTANCES).inAnyNamespace().runnableInformer(0));
        watch("launcher pods", client.pods().inAnyNamespace().withLabel("kubevirt.io", "virt-launcher").runnableInformer(0));
        watch("nodes", client.nodes().runnableInformer(0));
    }

    private <T extends HasMetadata> void watch(String what, SharedIndexInformer<T> informer) {
        informer.addEventHandler(new ResourceEventHandler<T>() {
            @Override
            public void onAdd(T obj) {
                changed(obj);
            }

            @Override
            public void onUpdate(T before, T after) {
                changed(after);
            }

            @Override
            public void onDelete(T obj, boolean finalStateUnknown) {
                changed(obj);
            }
        });
        informer.exceptionHandler((running, e) -> {
            LOG.warnf("automatic recovery cannot watch %s (%s); schedules look at their VMs every observation period instead", what, e.getMessage());
            return true; // keep retrying: KubeVirt or the RBAC rule may come later
        });
        informers.add(informer);
        informer.start().whenComplete((done, e) -> {
            if (e != null) {
                LOG.warnf("automatic recovery cannot watch %s: %s", what, e.getMessage());
            }
        });
    }

    /** Every schedule with automatic recovery that {@code changed} may concern looks again. */
    private void changed(HasMetadata changed) {
        if (!isRunning()) {
            return;
        }
        String namespace = changed.getMetadata().getNamespace();
        context.getPrimaryCache().list(s -> VcRecovery.automatic(s) && (namespace == null || namespace.equals(s.getMetadata().getNamespace())))
                .map(ResourceID::fromResource).forEach(this::propagateEvent);
    }

    @Override
    public synchronized void stop() {
        informers.forEach(SharedIndexInformer::stop);
        informers.clear();
        super.stop();
    }
}
