package io.mekha.api;

import static io.mekha.api.ApiServerValidation.yaml;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The committed CRDs refuse what the API server should refuse, with a message that says what to
 * fix, and accept what users write: their OpenAPI schemas and CEL rules evaluated by real
 * validators ({@link ApiServerValidation}), since the mock API server of the operator tests
 * validates nothing.
 */
@Tag("fast")
@Tag("security")
class CrdSchemaTest {
    static final ApiServerValidation CHECKPOINT = ApiServerValidation.of(Path.of("crds/virtualclustercheckpoints.mekha.io-v1.yml"));
    static final ApiServerValidation RESTORE = ApiServerValidation.of(Path.of("crds/virtualclusterrestores.mekha.io-v1.yml"));
    static final ApiServerValidation SCHEDULE = ApiServerValidation.of(Path.of("crds/virtualclustercheckpointschedules.mekha.io-v1.yml"));
    static final ApiServerValidation LOCATION = ApiServerValidation.of(Path.of("crds/checkpointstoragelocations.mekha.io-v1.yml"));

    static JsonNode checkpoint(String spec) {
        return yaml("apiVersion: mekha.io/v1alpha1\nkind: VirtualClusterCheckpoint\nmetadata: {name: c1, namespace: hpc}\n" + spec);
    }

    @Test
    void everyCelRuleCompiles() {
        for (ApiServerValidation crd : List.of(CHECKPOINT, RESTORE, SCHEDULE, LOCATION)) {
            crd.rules();
        }
        assertThat(CHECKPOINT.rules()).isNotEmpty();
    }

    @Test
    void checkpointsUsersWriteAreAccepted() {
        assertThat(CHECKPOINT.create(checkpoint("spec: {vms: [mpi-0, mpi-1.rack2]}"))).isEmpty();
        assertThat(CHECKPOINT.create(checkpoint("spec: {selector: {matchLabels: {app: mpi}}}"))).isEmpty();
        assertThat(CHECKPOINT.create(checkpoint("""
                spec:
                  vms: [a, b]
                  transferMode: StopAndCopy
                  failureDeadline: 10m
                  liveStage: {maxPerVm: 30s, globalBound: 1m30s, bandwidthPerVm: 1000000}
                  storage: {levels: [L1, L2], level2: {location: nfs-1}, compression: zstd}
                """))).isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            no spec                       | '# no spec'                                                     | spec: Required value
            both selector and vms         | spec: {vms: [a], selector: {matchLabels: {a: b}}}               | set exactly one of spec.selector
            neither selector nor vms      | spec: {transferMode: MTD}                                       | set exactly one of spec.selector
            a VM name with capitals       | spec: {vms: [Mpi_0]}                                            | spec.vms: Invalid value: each VM name
            a VM name with a slash        | spec: {vms: [../etc]}                                           | each VM name
            a VM named twice              | spec: {vms: [a, a]}                                             | a VM is named twice
            a level named twice           | spec: {vms: [a], storage: {levels: [L1, L1]}}                    | a level is named twice
            an unknown level              | spec: {vms: [a], storage: {levels: [L3]}}                        | L3
            L2 without a location         | spec: {vms: [a], storage: {levels: [L2]}}                        | set storage.level2.location
            a zero deadline               | spec: {vms: [a], failureDeadline: 0s}                            | spec.failureDeadline: Invalid value: a duration above zero
            a deadline without a unit     | spec: {vms: [a], failureDeadline: '300'}                         | failureDeadline
            a zero per-VM bound           | spec: {vms: [a], liveStage: {maxPerVm: 0ms}}                     | spec.liveStage.maxPerVm: Invalid value: a duration above zero
            global bound below per-VM     | spec: {vms: [a], liveStage: {maxPerVm: 2m, globalBound: 90s}}    | globalBound must be at least maxPerVm
            global bound below default    | spec: {vms: [a], liveStage: {globalBound: 20s}}                  | globalBound must be at least maxPerVm
            an unknown field              | spec: {vms: [a], levels: [L1]}                                   | unknown field "spec.levels"
            an unknown transfer mode      | spec: {vms: [a], transferMode: PostCopy}                         | transferMode
            """)
    void badCheckpointsAreRefusedSayingWhatToFix(String what, String spec, String expected) {
        List<String> errors = CHECKPOINT.create(checkpoint(spec));
        assertThat(errors).as(what + ": " + errors).anySatisfy(e -> assertThat(e).contains(expected));
    }

    @Test
    void aCheckpointsSpecCannotChangeOnceCreatedButItsLabelsAndStatusCan() {
        JsonNode created = checkpoint("spec: {vms: [a, b], timePolicy: Virtual}");
        assertThat(CHECKPOINT.update(created, checkpoint("spec: {vms: [a, b], timePolicy: Step}")))
                .anySatisfy(e -> assertThat(e).contains("spec is immutable"));
        assertThat(CHECKPOINT.update(created, checkpoint("spec: {vms: [a, c], timePolicy: Virtual}")))
                .anySatisfy(e -> assertThat(e).contains("spec is immutable"));
        assertThat(CHECKPOINT.update(created, checkpoint("spec: {vms: [a, b], timePolicy: Virtual}\nstatus: {phase: InProgress}"))).isEmpty();
    }

    static JsonNode restore(String spec) {
        return yaml("apiVersion: mekha.io/v1alpha1\nkind: VirtualClusterRestore\nmetadata: {name: r1, namespace: hpc}\n" + spec);
    }

    @Test
    void restoresAreValidatedAndImmutable() {
        assertThat(RESTORE.create(restore("spec: {checkpointName: c1, preferredLevel: L1, slewPeriod: 30s}"))).isEmpty();
        assertThat(RESTORE.create(restore("# no spec"))).anySatisfy(e -> assertThat(e).contains("spec: Required value"));
        assertThat(RESTORE.create(restore("spec: {checkpointName: ../c1}"))).anySatisfy(e -> assertThat(e).contains("checkpointName"));
        assertThat(RESTORE.create(restore("spec: {checkpointName: c1, slewPeriod: 0s}")))
                .anySatisfy(e -> assertThat(e).contains("spec.slewPeriod: Invalid value: a duration above zero"));
        assertThat(RESTORE.update(restore("spec: {checkpointName: c1}"), restore("spec: {checkpointName: c2}")))
                .anySatisfy(e -> assertThat(e).contains("spec is immutable"));
    }

    static JsonNode schedule(String spec) {
        return yaml("apiVersion: mekha.io/v1alpha1\nkind: VirtualClusterCheckpointSchedule\nmetadata: {name: s1, namespace: hpc}\n" + spec);
    }

    @Test
    void schedulesAreValidatedAndMayBeEdited() {
        JsonNode good = schedule("spec: {schedule: '*/30 * * * *', template: {spec: {vms: [a]}}, retention: {keepLast: 5, maxAge: 24h}}");
        assertThat(SCHEDULE.create(good)).isEmpty();
        assertThat(SCHEDULE.update(good, schedule("spec: {schedule: '0 * * * *', template: {spec: {vms: [a, b]}}}"))).isEmpty();
        assertThat(SCHEDULE.create(schedule("# no spec"))).anySatisfy(e -> assertThat(e).contains("spec: Required value"));
        assertThat(SCHEDULE.create(schedule("spec: {schedule: '* * * * * *', template: {spec: {vms: [a]}}}")))
                .anySatisfy(e -> assertThat(e).contains("schedule"));
        assertThat(SCHEDULE.create(schedule("spec: {schedule: '0 * * * *', template: {spec: {vms: [A]}}}")))
                .anySatisfy(e -> assertThat(e).contains("each VM name"));
        assertThat(SCHEDULE.create(schedule("spec: {schedule: '0 * * * *', template: {spec: {vms: [a]}}, retention: {keepLast: 0}}")))
                .anySatisfy(e -> assertThat(e).contains("keepLast"));
        assertThat(SCHEDULE.create(schedule("spec: {schedule: '0 * * * *', template: {spec: {vms: [a]}}, retention: {keepLast: 100000}}")))
                .anySatisfy(e -> assertThat(e).contains("keepLast"));
        assertThat(SCHEDULE.create(schedule("spec: {schedule: '0 * * * *', template: {spec: {vms: [a]}}, retention: {maxAge: 0h}}")))
                .anySatisfy(e -> assertThat(e).contains("a duration above zero"));
    }

    @Test
    void automaticRecoveryIsOptInAndBounded() {
        String base = "spec: {schedule: '0 * * * *', template: {spec: {vms: [a]}}, recovery: ";
        assertThat(SCHEDULE.create(schedule(base + "{policy: Automatic, maxRecoveries: 3, window: 1h, backoff: 0s, nodeGracePeriod: 30s}}")))
                .isEmpty();
        assertThat(SCHEDULE.create(schedule(base + "{policy: Sometimes}}"))).anySatisfy(e -> assertThat(e).contains("policy")
                .contains("Automatic"));
        assertThat(SCHEDULE.create(schedule(base + "{policy: Automatic, maxRecoveries: 0}}"))).anySatisfy(e -> assertThat(e).contains("maxRecoveries"));
        assertThat(SCHEDULE.create(schedule(base + "{policy: Automatic, window: 0h}}")))
                .anySatisfy(e -> assertThat(e).contains("a duration above zero"));
        assertThat(SCHEDULE.create(schedule(base + "{policy: Automatic, nodeGracePeriod: 30 seconds}}")))
                .anySatisfy(e -> assertThat(e).contains("nodeGracePeriod"));
    }

    @Test
    void storageLocationsNeedATarget() {
        JsonNode location = yaml("""
                apiVersion: mekha.io/v1alpha1
                kind: CheckpointStorageLocation
                metadata: {name: nfs-1}
                spec: {}
                """);
        assertThat(LOCATION.create(location)).isNotEmpty();
        assertThat(LOCATION.create(yaml("apiVersion: mekha.io/v1alpha1\nkind: CheckpointStorageLocation\nmetadata: {name: x}\n")))
                .anySatisfy(e -> assertThat(e).contains("spec: Required value"));
    }
}
