package io.mekha.api;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.server.AgentHttpServer;
import io.mekha.agent.server.BearerToken;
import io.mekha.operator.service.OperatorMetrics;
import io.mekha.protocol.CheckpointReport;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.net.InetSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Grafana dashboard and the Prometheus alert rules in manifests/monitoring parse, and every metric they name is
 * one that Mekha exports: the operator's, as its Micrometer meters come out of a Prometheus registry once each has
 * recorded something, and an agent's, as its /metrics endpoint serves them.
 */
@Tag("fast")
class ObservabilityTest {
    static final Path DASHBOARD = Path.of("manifests/monitoring/grafana-dashboard.json");
    static final Path RULES = Path.of("manifests/monitoring/prometheus-rules.yaml");
    static final Pattern METRIC = Pattern.compile("\\bmekha_[a-z0-9_]+");

    @TempDir
    Path work;

    @Test
    void theDashboardAndTheAlertRulesNameOnlyMetricsMekhaExports() throws Exception {
        List<String> expressions = new ArrayList<>();
        JsonNode dashboard = new ObjectMapper().readTree(Files.readString(DASHBOARD));
        assertThat(dashboard.path("panels")).isNotEmpty();
        dashboard.path("panels").forEach(panel -> {
            assertThat(panel.path("targets")).as("panel '%s' has queries", panel.path("title").asText()).isNotEmpty();
            panel.path("targets").forEach(t -> expressions.add(t.path("expr").asText()));
        });
        JsonNode rules = new YAMLMapper().readTree(Files.readString(RULES));
        assertThat(rules.path("kind").asText()).isEqualTo("PrometheusRule");
        List<String> alerts = new ArrayList<>();
        rules.path("spec").path("groups").forEach(g -> g.path("rules").forEach(r -> {
            alerts.add(r.path("alert").asText());
            expressions.add(r.path("expr").asText());
        }));
        assertThat(alerts).contains("MekhaCheckpointsFailing", "MekhaVmPausedPastDeadline", "MekhaScheduleMissingRuns",
                "MekhaLevel0NearMemoryLimit");

        Set<String> named = new TreeSet<>();
        for (String expr : expressions) {
            assertThat(expr).as("an empty query").isNotBlank();
            Matcher m = METRIC.matcher(expr);
            boolean any = false;
            while (m.find()) {
                named.add(m.group());
                any = true;
            }
            assertThat(any).as("query '%s' names a Mekha metric", expr).isTrue();
        }
        Set<String> exported = new TreeSet<>();
        exported.addAll(names(operatorExposition()));
        exported.addAll(names(agentExposition()));
        assertThat(named).as("metrics the dashboard and rules name; exported: %s", exported).isSubsetOf(exported);
    }

    /** The operator's meters, each fed once, as Prometheus scrapes them from the operator. */
    private static String operatorExposition() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        OperatorMetrics metrics = new OperatorMetrics(registry);
        metrics.checkpointFinished("failed", "CheckpointFailed");
        metrics.restoreFinished("succeeded", "Restored", "L0");
        metrics.recoveryFinished("failed", "none");
        Instant now = Instant.now();
        var figures = new io.mekha.model.TransferFigures(io.mekha.model.TransferMode.MTD, Duration.ofMillis(120), Duration.ofMillis(118),
                Duration.ofMillis(60), 300L << 20, Duration.ofSeconds(1), 3, "converged", Duration.ofSeconds(2), now, now.plusMillis(118));
        var vm = new io.mekha.protocol.VmCheckpointReport("vm1", "n1", figures, now, now, now, now.plusMillis(118), now, 0, now, now);
        metrics.checkpointTaken(new CheckpointReport("cp", List.of(vm), now, now.plusMillis(120), "converged", Duration.ofSeconds(2)),
                Duration.ofSeconds(2));
        metrics.timeToDurable(Duration.ofSeconds(9));
        metrics.restoreResumeSkew(Duration.ofMillis(1));
        metrics.scheduleObserved("hpc", "nightly", Instant.now(), 0, Duration.ofHours(1));
        return registry.scrape();
    }

    /** An agent's /metrics, as Prometheus scrapes it from the node. */
    private String agentExposition() throws Exception {
        try (AgentService agent = new AgentService("n1", new LocalVmRuntime(RuntimeConfig.defaults(work)), new RendezvousClock(Clock.systemUTC()));
             AgentHttpServer server = new AgentHttpServer(agent, BearerToken.random(), new InetSocketAddress("127.0.0.1", 0)).start()) {
            return HttpClient.newHttpClient().send(HttpRequest.newBuilder(server.uri().resolve("/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        }
    }

    /** Every sample name in an exposition (a histogram's or summary's _sum, _count and _max included). */
    private static Set<String> names(String exposition) {
        Set<String> names = new TreeSet<>();
        exposition.lines().filter(l -> !l.startsWith("#") && !l.isBlank()).forEach(l -> names.add(l.split("[{ ]", 2)[0]));
        return names;
    }
}
