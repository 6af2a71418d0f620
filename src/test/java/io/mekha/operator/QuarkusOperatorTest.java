package io.mekha.operator;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.LabelSelectorBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.KubernetesTestServer;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The operator as it runs in the cluster: Quarkus, the Operator SDK extension and CDI build the
 * reconcilers and their services from configuration; started as {@code mekha operator} starts it.
 * The deep behaviour is in OperatorCheckpointTest; this proves the wiring reconciles at all.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true)
@Tag("fast")
class QuarkusOperatorTest {

    @KubernetesTestServer
    KubernetesMockServer server;

    @Inject
    Operator operator;

    @Inject
    KubernetesClient client;

    @Test
    void theQuarkusOperatorReconcilesACheckpointAndExplainsARefusal() throws Exception {
        try (Stream<Path> crds = Files.list(Path.of("crds"))) {
            for (Path file : crds.filter(p -> p.toString().endsWith(".yml")).toList()) {
                try (InputStream in = Files.newInputStream(file)) {
                    client.resource(Serialization.unmarshal(in, CustomResourceDefinition.class)).create();
                }
            }
        }
        operator.start();
        client.resource(OperatorCheckpointTest.checkpoint("nothing", new LabelSelectorBuilder().withMatchLabels(Map.of("app", "none")).build(),
                null, null)).create();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        VirtualClusterCheckpoint cp = null;
        while (System.nanoTime() < deadline) {
            cp = client.resources(VirtualClusterCheckpoint.class).inNamespace(OperatorCheckpointTest.NS).withName("nothing").get();
            if (cp != null && cp.getStatus() != null && cp.getStatus().phase == Phase.Failed) {
                break;
            }
            Thread.sleep(100);
        }
        assertThat(cp.getStatus().phase).isEqualTo(Phase.Failed);
        assertThat(Conditions.get(cp.getStatus().conditions, Conditions.FAILURE).getReason()).isEqualTo("NoVirtualMachines");
        assertThat(cp.getMetadata().getFinalizers()).as("the finalizer that deletes stored data").isNotEmpty();
        // agents are called over mutual TLS by default: the operator made its CA and published its certificate for them
        assertThat(client.secrets().inNamespace("mekha-system").withName("mekha-agent-ca").get().getData()).containsKeys("tls.crt", "tls.key");
        assertThat(client.configMaps().inNamespace("mekha-system").withName("mekha-agent-ca").get().getData()).containsOnlyKeys("ca.crt");
    }
}
