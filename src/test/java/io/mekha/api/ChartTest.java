package io.mekha.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Helm chart (charts/mekha) and the kustomize bundle (manifests/) are one source: the chart renders the bundle's
 * own files (bundle/ links to manifests/, its crds/ to crds/). With its default values the chart renders exactly the
 * objects the bundle holds; its values change only what they name (images, level-0 memory, node selector and
 * tolerations, monitoring, storage locations). {@code helm lint --strict} passes. Helm runs through the Helm Java SDK,
 * which bundles it.
 */
@Tag("fast")
class ChartTest {
    static final Path CHART = Path.of("charts/mekha");
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path work;

    @Test
    void theChartLintsCleanAndRendersExactlyTheKustomizeBundle() throws Exception {
        LintResult lint = new Helm(CHART).lint().strict().call();
        assertThat(lint.isFailed()).as(String.join("\n", lint.getMessages())).isFalse();

        Map<String, JsonNode> chart = byName(render(List.of()));
        Map<String, JsonNode> bundle = byName(ManifestsTest.load(Path.of("manifests")).stream()
                .filter(o -> !o.getKind().equals("CustomResourceDefinition")).toList());
        assertThat(chart.keySet()).isEqualTo(bundle.keySet());
        bundle.forEach((name, json) -> assertThat(chart.get(name)).as(name).isEqualTo(json));
        for (Path crd : Files.list(Path.of("crds")).filter(p -> p.toString().endsWith(".yml")).toList()) {
            assertThat(CHART.resolve("crds").resolve(crd.getFileName())).as("the chart installs CRD %s", crd.getFileName()).hasSameTextualContentAs(crd);
        }

        Map<String, JsonNode> monitored = byName(render(List.of("monitoring.enabled=true")));
        Map<String, JsonNode> monitoring = byName(ManifestsTest.load(Path.of("manifests/monitoring")));
        monitoring.forEach((name, json) -> assertThat(monitored.get(name)).as(name).isEqualTo(json));
        assertThat(monitored).containsKey("ConfigMap/mekha-system/mekha-grafana-dashboard");
        var dashboard = JSON.treeToValue(monitored.get("ConfigMap/mekha-system/mekha-grafana-dashboard"),
                io.fabric8.kubernetes.api.model.ConfigMap.class);
        assertThat(dashboard.getData().get("grafana-dashboard.json")).isEqualTo(Files.readString(Path.of("manifests/monitoring/grafana-dashboard.json")));
        assertThat(dashboard.getMetadata().getLabels()).containsEntry("grafana_dashboard", "1");
    }

    @Test
    void valuesChangeOnlyWhatTheyName() throws Exception {
        Path values = work.resolve("values.yaml");
        Files.writeString(values, """
                images:
                  agent: {repository: registry.example/mekha-agent, digest: "sha256:0123"}
                  operator: {repository: registry.example/mekha-operator, tag: "0.2.0"}
                agent:
                  level0Memory: 48Gi
                  lendMemory: 20Gi
                  nodeSelector: {node-role.example/vm: "true"}
                  tolerations:
                    - {key: dedicated, operator: Equal, value: vms, effect: NoSchedule}
                storageLocations:
                  - name: shared-nfs
                    spec: {path: /mnt/mekha-level2, namespaces: [hpc]}
                """);
        Map<String, JsonNode> rendered = byName(render(values));
        DaemonSet agent = JSON.treeToValue(rendered.get("DaemonSet/mekha-system/mekha-agent"), DaemonSet.class);
        var pod = agent.getSpec().getTemplate().getSpec();
        assertThat(pod.getContainers().get(0).getImage()).isEqualTo("registry.example/mekha-agent@sha256:0123");
        assertThat(pod.getContainers().get(0).getResources().getLimits().get("memory").toString()).isEqualTo("48Gi");
        assertThat(pod.getContainers().get(0).getArgs()).endsWith("--lend-memory=20Gi");
        assertThat(pod.getVolumes()).filteredOn(v -> v.getName().equals("level0")).singleElement()
                .satisfies(v -> assertThat(v.getEmptyDir().getSizeLimit().toString()).isEqualTo("48Gi"));
        // Helm merges a map value into the default: the default kubernetes.io/os stays unless set to null
        assertThat(pod.getNodeSelector()).containsOnly(Map.entry("node-role.example/vm", "true"), Map.entry("kubernetes.io/os", "linux"));
        assertThat(pod.getTolerations()).singleElement().satisfies(t -> assertThat(t.getKey() + "=" + t.getValue()).isEqualTo("dedicated=vms"));
        assertThat(pod.getAffinity()).as("the bundle's own affinity stays").isNotNull();
        Deployment operator = JSON.treeToValue(rendered.get("Deployment/mekha-system/mekha-operator"), Deployment.class);
        assertThat(operator.getSpec().getTemplate().getSpec().getContainers().get(0).getImage()).isEqualTo("registry.example/mekha-operator:0.2.0");
        assertThat(rendered.get("CheckpointStorageLocation//shared-nfs").toString()).contains("\"path\":\"/mnt/mekha-level2\"").contains("\"hpc\"");

        // everything else is the bundle's
        Map<String, JsonNode> bundle = byName(ManifestsTest.load(Path.of("manifests")).stream()
                .filter(o -> !o.getKind().equals("CustomResourceDefinition")).toList());
        bundle.forEach((name, json) -> {
            if (!name.startsWith("DaemonSet/") && !name.startsWith("Deployment/")) {
                assertThat(rendered.get(name)).as(name).isEqualTo(json);
            }
        });

        Files.writeString(values, "storageLocations:\n  - spec: {path: /mnt/x}\n");
        assertThatThrownBy(() -> render(values)).hasMessageContaining("each storageLocations entry needs a name");
    }

    private List<HasMetadata> render(List<String> sets) {
        var template = new Helm(CHART).template().withName("mekha").withNamespace("mekha-system");
        for (String set : sets) {
            String[] kv = set.split("=", 2);
            template.set(kv[0], kv[1]);
        }
        return parse(template.call());
    }

    private List<HasMetadata> render(Path values) {
        return parse(new Helm(CHART).template().withName("mekha").withNamespace("mekha-system").withValuesFile(values).call());
    }

    private static List<HasMetadata> parse(String yaml) {
        List<HasMetadata> objects = new ArrayList<>();
        for (String doc : yaml.split("(?m)^---\\s*$")) {
            if (doc.lines().anyMatch(l -> l.startsWith("kind:"))) {
                objects.add(Serialization.unmarshal(doc, HasMetadata.class));
            }
        }
        return objects;
    }

    /** Each object as a JSON tree (through fabric8's model: one spelling of every value; keys in any order), by kind/namespace/name. */
    private static Map<String, JsonNode> byName(List<HasMetadata> objects) throws java.io.IOException {
        Map<String, JsonNode> byName = new TreeMap<>();
        for (HasMetadata o : objects) {
            String key = o.getKind() + "/" + (o.getMetadata().getNamespace() == null ? "" : o.getMetadata().getNamespace()) + "/"
                    + o.getMetadata().getName();
            assertThat(byName.put(key, JSON.readTree(Serialization.asJson(o)))).as("%s rendered once", key).isNull();
        }
        return byName;
    }
}
