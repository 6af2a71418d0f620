package io.mekha.api;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.api.model.rbac.RoleBinding;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The install bundle holds together: every file kustomize names exists and parses as Kubernetes
 * objects, every ServiceAccount, Role and port a workload or binding names is in the bundle, and
 * the operator and the agent agree on identity, audience, labels and port. (A cluster applies it
 * for real in e2e/.)
 */
@Tag("fast")
class ManifestsTest {
    static final ObjectMapper YAML = new YAMLMapper(new YAMLFactory());

    @Test
    void theBundleParsesAndEveryReferenceResolvesInsideIt() throws IOException {
        List<HasMetadata> objects = load(Path.of("manifests"));
        assertThat(objects).extracting(HasMetadata::getKind).contains("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
                "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "DaemonSet", "Service");
        assertThat(of(objects, CustomResourceDefinition.class)).extracting(c -> c.getMetadata().getName())
                .containsExactlyInAnyOrder("virtualclustercheckpoints.mekha.io", "virtualclusterrestores.mekha.io",
                        "virtualclustercheckpointschedules.mekha.io", "checkpointstoragelocations.mekha.io");
        // the operator reads Secrets only in its own namespace (storage locations' credentials), never a tenant's
        assertThat(of(objects, io.fabric8.kubernetes.api.model.rbac.ClusterRole.class))
                .flatExtracting(io.fabric8.kubernetes.api.model.rbac.ClusterRole::getRules)
                .noneMatch(rule -> rule.getResources().contains("secrets"));
        assertThat(of(objects, io.fabric8.kubernetes.api.model.rbac.Role.class))
                .filteredOn(r -> r.getRules().stream().anyMatch(rule -> rule.getResources().contains("secrets")))
                .extracting(r -> r.getMetadata().getNamespace() + "/" + r.getMetadata().getName())
                .containsExactly("mekha-system/mekha-operator");

        List<String> accounts = of(objects, ServiceAccount.class).stream().map(a -> a.getMetadata().getNamespace() + "/" + a.getMetadata().getName())
                .toList();
        Deployment operator = of(objects, Deployment.class).get(0);
        DaemonSet agent = of(objects, DaemonSet.class).get(0);
        assertThat(accounts).contains("mekha-system/" + operator.getSpec().getTemplate().getSpec().getServiceAccountName(),
                "mekha-system/" + agent.getSpec().getTemplate().getSpec().getServiceAccountName());
        for (ClusterRoleBinding b : of(objects, ClusterRoleBinding.class)) {
            assertThat(of(objects, ClusterRole.class)).extracting(r -> r.getMetadata().getName()).contains(b.getRoleRef().getName());
            b.getSubjects().stream().filter(s -> s.getKind().equals("ServiceAccount"))
                    .forEach(s -> assertThat(accounts).contains(s.getNamespace() + "/" + s.getName()));
            // beyond the bundle's own accounts, only every authenticated user, and only to see which storage locations exist
            b.getSubjects().stream().filter(s -> !s.getKind().equals("ServiceAccount")).forEach(s -> {
                assertThat(s.getKind() + "/" + s.getName()).isEqualTo("Group/system:authenticated");
                assertThat(b.getRoleRef().getName()).isEqualTo("mekha-storage-locations-view");
            });
        }
        for (RoleBinding b : of(objects, RoleBinding.class)) {
            assertThat(of(objects, Role.class)).extracting(r -> r.getMetadata().getNamespace() + "/" + r.getMetadata().getName())
                    .contains(b.getMetadata().getNamespace() + "/" + b.getRoleRef().getName());
            b.getSubjects().forEach(s -> assertThat(accounts).contains(s.getNamespace() + "/" + s.getName()));
        }

        // the agent lets in exactly the operator's ServiceAccount, with a token bound to its own node, which the operator may ask for
        List<String> agentArgs = agent.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs();
        String operatorUser = "system:serviceaccount:mekha-system:" + operator.getSpec().getTemplate().getSpec().getServiceAccountName();
        assertThat(agentArgs).contains("--allow-user=" + operatorUser);
        assertThat(agentArgs).contains("--audience=" + io.mekha.model.AgentAudience.of("$(NODE_NAME)"));
        String account = operator.getSpec().getTemplate().getSpec().getServiceAccountName();
        assertThat(operator.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv())
                .anySatisfy(e -> assertThat(e.getName() + "=" + e.getValue()).isEqualTo("MEKHA_OPERATOR_SERVICE_ACCOUNT=" + account));
        assertThat(of(objects, Role.class).stream().filter(r -> r.getMetadata().getNamespace().equals("mekha-system"))
                .flatMap(r -> r.getRules().stream()).filter(r -> r.getResources().contains("serviceaccounts/token")).toList())
                .singleElement().satisfies(r -> {
                    assertThat(r.getResourceNames()).containsExactly(account);
                    assertThat(r.getVerbs()).containsExactly("create");
                });

        // mutual TLS: the agent asks for its certificate (a CSR, its CA from one ConfigMap); the operator signs as mekha.io/agent
        // and nothing more; the probes go over https
        assertThat(agentArgs).contains("--tls-from-csr", "--tls-namespace=$(POD_NAMESPACE)");
        var agentSpec = agent.getSpec().getTemplate().getSpec().getContainers().get(0);
        for (var probe : List.of(agentSpec.getStartupProbe(), agentSpec.getLivenessProbe(), agentSpec.getReadinessProbe())) {
            assertThat(probe.getHttpGet().getScheme()).isEqualTo("HTTPS");
        }
        assertThat(env(operator)).doesNotContainEntry("MEKHA_OPERATOR_AGENT_TLS", "false");
        ClusterRole agentRole = of(objects, ClusterRole.class).stream().filter(r -> r.getMetadata().getName().equals("mekha-agent")).findFirst()
                .orElseThrow();
        assertThat(agentRole.getRules()).anySatisfy(r -> {
            assertThat(r.getResources()).containsExactly("certificatesigningrequests");
            assertThat(r.getVerbs()).containsExactlyInAnyOrder("create", "get");
        });
        assertThat(agentRole.getRules()).noneSatisfy(r -> assertThat(r.getResources()).contains("certificatesigningrequests/approval"));
        assertThat(of(objects, Role.class).stream().filter(r -> r.getMetadata().getName().equals("mekha-agent")).flatMap(r -> r.getRules().stream()))
                .singleElement().satisfies(r -> {
                    assertThat(r.getResources()).containsExactly("configmaps");
                    assertThat(r.getResourceNames()).containsExactly("mekha-agent-ca");
                    assertThat(r.getVerbs()).containsExactly("get");
                });
        ClusterRole signer = of(objects, ClusterRole.class).stream().filter(r -> r.getMetadata().getName().equals("mekha-operator")).findFirst()
                .orElseThrow();
        assertThat(signer.getRules()).anySatisfy(r -> {
            assertThat(r.getResources()).containsExactly("signers");
            assertThat(r.getResourceNames()).containsExactly(io.mekha.tls.TlsNames.AGENT_SIGNER);
            assertThat(r.getVerbs()).containsExactlyInAnyOrder("approve", "sign");
        });

        // on the pod network only the operator's pods reach the agents' port, and only agents' pods their partner listener
        var policy = of(objects, io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy.class).stream()
                .filter(p -> agent.getSpec().getTemplate().getMetadata().getLabels().entrySet()
                        .containsAll(p.getSpec().getPodSelector().getMatchLabels().entrySet())).findFirst().orElseThrow();
        assertThat(policy.getSpec().getPolicyTypes()).containsExactly("Ingress");
        assertThat(policy.getSpec().getIngress()).hasSize(2);
        assertThat(policy.getSpec().getIngress()).anySatisfy(rule -> {
            assertThat(rule.getFrom()).singleElement().satisfies(from -> assertThat(operator.getSpec().getTemplate().getMetadata().getLabels())
                    .containsAllEntriesOf(from.getPodSelector().getMatchLabels()));
            assertThat(rule.getPorts()).singleElement().satisfies(port -> assertThat(port.getPort().getStrVal()).isEqualTo("agent"));
        });
        assertThat(policy.getSpec().getIngress()).anySatisfy(rule -> {
            assertThat(rule.getFrom()).singleElement().satisfies(from -> assertThat(agent.getSpec().getTemplate().getMetadata().getLabels())
                    .containsAllEntriesOf(from.getPodSelector().getMatchLabels()));
            assertThat(rule.getPorts()).singleElement().satisfies(port -> assertThat(port.getPort().getStrVal()).isEqualTo("partner"));
        });
        assertThat(agent.getSpec().getTemplate().getSpec().getContainers().get(0).getPorts()).extracting(p -> p.getName()).contains("partner");
        assertThat(agent.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs()).contains("--partner-listen=0.0.0.0:7071");

        // the operator finds agents by the DaemonSet's pod labels and the port named "agent"
        Map<String, String> env = operator.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv().stream()
                .filter(e -> e.getValue() != null).collect(Collectors.toMap(e -> e.getName(), e -> e.getValue()));
        String[] selector = env.get("MEKHA_OPERATOR_AGENT_SELECTOR").split("=");
        assertThat(agent.getSpec().getTemplate().getMetadata().getLabels()).containsEntry(selector[0], selector[1]);
        assertThat(agent.getSpec().getTemplate().getSpec().getContainers().get(0).getPorts()).extracting(p -> p.getName()).contains("agent");
        assertThat(agent.getSpec().getTemplate().getSpec().getHostPID()).isTrue();
        assertThat(agent.getSpec().getTemplate().getSpec().getContainers().get(0).getLivenessProbe().getHttpGet().getPath()).isEqualTo("/healthz");
        // on KubeVirt: the VMIs' QEMUs through the host's process table, level 0 in a memory-backed volume
        var agentContainer = agent.getSpec().getTemplate().getSpec().getContainers().get(0);
        assertThat(agent.getSpec().getTemplate().getSpec().getHostPID()).isTrue();
        assertThat(agentContainer.getArgs()).contains("--runtime=kubevirt", "--level0-dir=/var/lib/mekha-level0");
        // not privileged: root with a listed set of capabilities; never on control-plane nodes, no blanket toleration
        var security = agentContainer.getSecurityContext();
        assertThat(security.getPrivileged()).isFalse();
        assertThat(security.getAllowPrivilegeEscalation()).isFalse();
        assertThat(security.getCapabilities().getDrop()).containsExactly("ALL");
        assertThat(security.getCapabilities().getAdd()).containsExactlyInAnyOrder("SYS_PTRACE", "DAC_OVERRIDE", "DAC_READ_SEARCH", "CHOWN", "FOWNER");
        var podSpec = agent.getSpec().getTemplate().getSpec();
        assertThat(podSpec.getAffinity().getNodeAffinity().getRequiredDuringSchedulingIgnoredDuringExecution().getNodeSelectorTerms())
                .allSatisfy(t -> assertThat(t.getMatchExpressions()).anySatisfy(e -> {
                    assertThat(e.getKey()).isEqualTo("node-role.kubernetes.io/control-plane");
                    assertThat(e.getOperator()).isEqualTo("DoesNotExist");
                }));
        assertThat(podSpec.getTolerations()).noneSatisfy(t -> assertThat(t.getKey()).isNull());
        for (var container : List.of(agentContainer, operator.getSpec().getTemplate().getSpec().getContainers().get(0))) {
            assertThat(container.getSecurityContext().getPrivileged()).as(container.getName()).isNotEqualTo(Boolean.TRUE);
        }
        assertThat(agentContainer.getVolumeMounts()).anySatisfy(m -> assertThat(m.getMountPath()).isEqualTo("/var/lib/mekha-level0"));
        assertThat(agent.getSpec().getTemplate().getSpec().getVolumes()).anySatisfy(v -> {
            assertThat(v.getName()).isEqualTo("level0");
            assertThat(v.getEmptyDir().getMedium()).isEqualTo("Memory");
        });
        assertThat(operator.getSpec().getTemplate().getSpec().getContainers().get(0).getReadinessProbe().getHttpGet().getPath())
                .isEqualTo("/q/health/ready");

        // the operator may do what its reconcilers do
        ClusterRole operatorRole = of(objects, ClusterRole.class).stream().filter(r -> r.getMetadata().getName().equals("mekha-operator")).findFirst()
                .orElseThrow();
        assertThat(operatorRole.getRules()).anySatisfy(r -> {
            assertThat(r.getResources()).contains("virtualclustercheckpoints/status", "virtualclustercheckpoints/finalizers");
            assertThat(r.getVerbs()).contains("update", "patch");
        });
        // KubeVirt's objects: a restore patches a VM's template and deletes its instance, a checkpoint patches the instance's
        // Paused condition; nothing is created or replaced
        assertThat(operatorRole.getRules()).filteredOn(r -> r.getApiGroups().contains("kubevirt.io")).allSatisfy(r -> {
            assertThat(r.getVerbs()).doesNotContain("create", "update", "deletecollection");
            if (r.getResources().contains("virtualmachines")) {
                assertThat(r.getVerbs()).contains("patch").doesNotContain("delete");
            }
            if (r.getResources().contains("virtualmachineinstances")) {
                assertThat(r.getVerbs()).contains("delete", "patch");
            }
        }).hasSize(2);
        assertThat(operatorRole.getRules()).anySatisfy(r -> {
            assertThat(r.getResources()).containsExactly("volumesnapshots");
            assertThat(r.getVerbs()).contains("create", "delete");
        });
    }

    private static Map<String, String> env(io.fabric8.kubernetes.api.model.apps.Deployment deployment) {
        return deployment.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv().stream()
                .filter(e -> e.getValue() != null).collect(Collectors.toMap(e -> e.getName(), e -> e.getValue()));
    }

    /** Every object of every file kustomize names, following directories with a kustomization of their own. */
    static List<HasMetadata> load(Path dir) throws IOException {
        JsonNode kustomization = YAML.readTree(dir.resolve("kustomization.yaml").toFile());
        List<HasMetadata> objects = new ArrayList<>();
        for (JsonNode resource : kustomization.path("resources")) {
            Path path = dir.resolve(resource.asText()).normalize();
            assertThat(path).as("kustomization in %s names %s", dir, resource.asText()).exists();
            if (Files.isDirectory(path)) {
                objects.addAll(load(path));
                continue;
            }
            for (String doc : Files.readString(path).split("(?m)^---\\s*$")) {
                if (doc.lines().anyMatch(l -> l.startsWith("kind:"))) {
                    objects.add(Serialization.unmarshal(doc, HasMetadata.class));
                }
            }
        }
        return objects;
    }

    static <T> List<T> of(List<HasMetadata> objects, Class<T> type) {
        return objects.stream().filter(type::isInstance).map(type::cast).toList();
    }
}
