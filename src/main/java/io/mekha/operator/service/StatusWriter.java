package io.mekha.operator.service;

import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * Writes a resource's status: the change is applied to the latest copy read from the API server and
 * sent only when it changed something, so writers from reconcilers and from protocol runs never
 * undo each other's fields.
 */
public final class StatusWriter {
    private static final Logger LOG = Logger.getLogger(StatusWriter.class);
    private final KubernetesClient client;

    public StatusWriter(KubernetesClient client) {
        this.client = client;
    }

    /** Applies {@code change} to the status; returns false when the resource is gone. */
    public <S, T extends CustomResource<?, S>> boolean update(Class<T> type, T resource, Consumer<S> change) {
        String ns = resource.getMetadata().getNamespace();
        String name = resource.getMetadata().getName();
        for (int attempt = 1; ; attempt++) {
            try {
                T latest = client.resources(type).inNamespace(ns).withName(name).get();
                if (latest == null) {
                    return false;
                }
                if (latest.getStatus() == null) {
                    // the API server keeps no status on a new object: start from the one a new resource has
                    latest.setStatus(emptyStatus(type));
                }
                String before = io.fabric8.kubernetes.client.utils.Serialization.asJson(latest.getStatus());
                change.accept(latest.getStatus());
                if (before.equals(io.fabric8.kubernetes.client.utils.Serialization.asJson(latest.getStatus()))) {
                    resource.setStatus(latest.getStatus());
                    return true;
                }
                T written = client.resource(latest).updateStatus();
                resource.setStatus(written.getStatus());
                resource.getMetadata().setResourceVersion(written.getMetadata().getResourceVersion());
                return true;
            } catch (KubernetesClientException e) {
                if (e.getCode() == 404) {
                    return false;
                }
                if (e.getCode() != 409 || attempt >= 5) {
                    throw e;
                }
                LOG.debugf("status of %s/%s changed under us, retrying", ns, name);
            }
        }
    }

    private static <S, T extends CustomResource<?, S>> S emptyStatus(Class<T> type) {
        try {
            return type.getDeclaredConstructor().newInstance().getStatus();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(type + " has no public no-argument constructor", e);
        }
    }
}
