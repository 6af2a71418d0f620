package io.mekha.e2e;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.testcontainers.k3s.K3sContainer;
import org.testcontainers.utility.DockerImageName;
import org.testcontainers.utility.MountableFile;

/**
 * The cluster the end-to-end suite runs on: an existing one ({@code MEKHA_E2E_KUBECONFIG}), or
 * k3s in a container started by Testcontainers' K3s module, with Mekha's images imported into its
 * containerd ({@code MEKHA_E2E_IMAGES}, an archive from {@code podman save}/{@code docker save}).
 * Commands go through {@code kubectl}, which must be on the PATH: the suite applies the same
 * kustomize bundles a person would.
 */
final class E2eCluster implements AutoCloseable {
    static final String DEFAULT_K3S_IMAGE = "rancher/k3s:v1.31.4-k3s1";

    private final K3sContainer k3s;
    private final Path kubeconfig;

    private E2eCluster(K3sContainer k3s, Path kubeconfig) {
        this.k3s = k3s;
        this.kubeconfig = kubeconfig;
    }

    static E2eCluster start() throws Exception {
        String existing = System.getenv("MEKHA_E2E_KUBECONFIG");
        if (existing != null && !existing.isBlank()) {
            return new E2eCluster(null, Path.of(existing));
        }
        String image = env("MEKHA_E2E_K3S_IMAGE", DEFAULT_K3S_IMAGE);
        K3sContainer k3s = new K3sContainer(DockerImageName.parse(image).asCompatibleSubstituteFor("rancher/k3s"));
        k3s.start();
        Path config = Files.createTempFile("mekha-e2e", ".kubeconfig");
        Files.writeString(config, k3s.getKubeConfigYaml());
        E2eCluster cluster = new E2eCluster(k3s, config);
        String images = requireEnv("MEKHA_E2E_IMAGES", "an archive of the mekha-operator and mekha-agent images (see e2e/README.md)");
        k3s.copyFileToContainer(MountableFile.forHostPath(images), "/tmp/mekha-images.tar");
        var imported = k3s.execInContainer("ctr", "-n", "k8s.io", "images", "import", "/tmp/mekha-images.tar");
        if (imported.getExitCode() != 0) {
            throw new IllegalStateException("importing Mekha's images into k3s failed: " + imported.getStderr());
        }
        return cluster;
    }

    /** Runs kubectl against the cluster; fails with kubectl's words when it does. */
    String kubectl(String... args) throws IOException, InterruptedException {
        return kubectlWithInput(null, args);
    }

    /** Runs kubectl with {@code stdin} fed to it (for {@code apply -f -}). */
    String kubectlWithInput(String stdin, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("kubectl", "--kubeconfig", kubeconfig.toString()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        if (stdin != null) {
            p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
        }
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", args) + " failed: " + out);
        }
        return out;
    }

    /** Polls {@code kubectl get ... -o jsonpath=...} until it prints {@code expected}. */
    String await(String expected, Duration timeout, String... getArgs) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                last = kubectl(getArgs).strip();
                if (last.equals(expected)) {
                    return last;
                }
            } catch (IllegalStateException e) {
                last = e.getMessage();
            }
            Thread.sleep(2000);
        }
        throw new AssertionError("kubectl " + String.join(" ", getArgs) + " never printed '" + expected + "' within " + timeout + "; last: " + last);
    }

    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }

    static String requireEnv(String name, String what) {
        String value = System.getenv(name);
        if (value == null || value.isBlank()) {
            throw new IllegalStateException("set " + name + ": " + what);
        }
        return value;
    }

    @Override
    public void close() {
        if (k3s != null) {
            k3s.stop();
        }
    }
}
