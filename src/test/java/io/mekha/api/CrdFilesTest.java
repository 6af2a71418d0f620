package io.mekha.api;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.crdv2.generator.CRDGenerator;
import io.mekha.api.v1alpha1.CheckpointStorageLocation;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CRDs under crds/ are generated from the Java model and committed; this test fails when they
 * drift apart. Regenerate them with {@code mvn test -Dtest=CrdFilesTest -Dmekha.crds.write=true}.
 */
@Tag("fast")
class CrdFilesTest {
    static final Path COMMITTED = Path.of("crds");

    static List<Path> generate(Path dir) {
        new CRDGenerator().inOutputDir(dir.toFile()).forCRDVersions("v1")
                .customResourceClasses(VirtualClusterCheckpoint.class, VirtualClusterRestore.class, VirtualClusterCheckpointSchedule.class,
                        CheckpointStorageLocation.class)
                .detailedGenerate();
        try (Stream<Path> files = Files.list(dir)) {
            return files.sorted().toList();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void committedCrdsEqualTheOnesGeneratedFromTheJavaModel(@TempDir Path dir) throws IOException {
        List<Path> generated = generate(dir);
        assertThat(generated).hasSize(4);
        if (Boolean.getBoolean("mekha.crds.write")) {
            for (Path file : generated) {
                Files.copy(file, COMMITTED.resolve(file.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
        for (Path file : generated) {
            Path committed = COMMITTED.resolve(file.getFileName());
            assertThat(committed).as("crds/%s is missing; regenerate with mvn test -Dtest=CrdFilesTest -Dmekha.crds.write=true",
                    file.getFileName()).exists();
            assertThat(Files.readString(committed))
                    .as("crds/%s differs from the Java model; regenerate with mvn test -Dtest=CrdFilesTest -Dmekha.crds.write=true",
                            file.getFileName())
                    .isEqualTo(Files.readString(file));
        }
        try (Stream<Path> committed = Files.list(COMMITTED)) {
            assertThat(committed.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".yml") || n.endsWith(".yaml"))
                            .filter(n -> !n.equals("kustomization.yaml")))
                    .as("crds/ holds only generated CRDs")
                    .containsExactlyInAnyOrderElementsOf(generated.stream().map(p -> p.getFileName().toString()).toList());
        }
    }
}
