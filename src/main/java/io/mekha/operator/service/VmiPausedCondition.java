package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.mekha.api.v1alpha1.Reasons;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * KubeVirt's view of a VMI Mekha holds paused. virt-handler sets the VMI's {@code Paused} condition
 * only for pauses libvirt knows the reason of (a user's pause, a migration, an I/O error); a stop
 * through Mekha's own monitor reaches libvirt as a pause of unknown reason, which KubeVirt shows
 * nowhere. So the operator adds the condition itself ({@link #REASON}) while every VM is held at
 * the cut, and takes it off once they run; virt-handler also removes a Paused condition when it
 * sees the domain running. Best effort: a failed write is logged, never fails a checkpoint.
 */
public final class VmiPausedCondition {
    private static final Logger LOG = Logger.getLogger(VmiPausedCondition.class);
    public static final String TYPE = "Paused";
    public static final String REASON = Reasons.PAUSED_BY_MEKHA;

    private final KubernetesClient client;

    public VmiPausedCondition(KubernetesClient client) {
        this.client = client;
    }

    public void held(String namespace, List<String> vms, String message, Instant since) {
        for (String vm : vms) {
            edit(namespace, vm, conditions -> {
                conditions.removeIf(c -> TYPE.equals(c.get("type")));
                Map<String, Object> paused = new LinkedHashMap<>();
                paused.put("type", TYPE);
                paused.put("status", "True");
                paused.put("reason", REASON);
                paused.put("message", message);
                paused.put("lastProbeTime", null);
                paused.put("lastTransitionTime", since.toString());
                conditions.add(paused);
            });
        }
    }

    public void released(String namespace, List<String> vms) {
        for (String vm : vms) {
            edit(namespace, vm, conditions -> conditions.removeIf(c -> TYPE.equals(c.get("type")) && REASON.equals(c.get("reason"))));
        }
    }

    @SuppressWarnings("unchecked")
    private void edit(String namespace, String vm, java.util.function.Consumer<List<Map<String, Object>>> change) {
        try {
            var vmi = client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace).withName(vm);
            if (vmi.get() == null) {
                return;
            }
            vmi.edit((GenericKubernetesResource r) -> {
                Object status = r.getAdditionalProperties().computeIfAbsent("status", k -> new LinkedHashMap<String, Object>());
                Map<String, Object> st = (Map<String, Object>) status;
                Object current = st.get("conditions");
                List<Map<String, Object>> conditions = current instanceof List<?> l ? new ArrayList<>((List<Map<String, Object>>) l) : new ArrayList<>();
                change.accept(conditions);
                st.put("conditions", conditions);
                return r;
            });
        } catch (KubernetesClientException e) {
            LOG.warnf("VMI %s/%s: could not update its Paused condition: %s", namespace, vm, e.getMessage());
        }
    }
}
