package io.mekha.operator;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.mekha.kubevirt.LauncherPods;
import io.mekha.model.VmSpec;
import io.mekha.operator.service.KubeVirt;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Plays KubeVirt's part for operator tests on the mock API server: a VirtualMachine set to run gets
 * an instance (annotations and node selector from its template), and behind the instance a real
 * QEMU started as virt-launcher starts it, with the hook's arguments for those annotations
 * ({@link LauncherPods}); a deleted instance's QEMU dies with its pod. Polls, as a controller's
 * resync would.
 */
final class FakeVirtController implements AutoCloseable {
    private final KubernetesClient client;
    private final String namespace;
    private final LauncherPods pods;
    private final Map<String, VmSpec> machines;
    private final String defaultNode;
    private final Map<String, LauncherPods.Launcher> running = new ConcurrentHashMap<>();
    private final Map<String, String> runningUid = new ConcurrentHashMap<>();
    private final Map<String, String> podOf = new ConcurrentHashMap<>();
    /** Every launcher pod started, with the node it was scheduled on. */
    private final Map<io.mekha.model.PodIdentity, String> nodeOfPod = new ConcurrentHashMap<>();
    /** Every launcher started for a VM, oldest first. */
    final Map<String, List<LauncherPods.Launcher>> history = new ConcurrentHashMap<>();
    /** VolumeSnapshots cut, as name@instant. */
    final List<String> snapshotsCut = new CopyOnWriteArrayList<>();
    private final Thread loop;
    private volatile boolean stopped;
    private volatile Throwable failure;
    private int pods_ = 0;

    FakeVirtController(KubernetesClient client, String namespace, LauncherPods pods, Map<String, VmSpec> machines, String defaultNode) {
        this.client = client;
        this.namespace = namespace;
        this.pods = pods;
        this.machines = machines;
        this.defaultNode = defaultNode;
        loop = new Thread(this::run, "fake-virt-controller");
        loop.setDaemon(true);
        loop.start();
    }

    private void run() {
        while (!stopped) {
            try {
                sync();
                Thread.sleep(200);
            } catch (InterruptedException e) {
                return;
            } catch (Throwable t) {
                failure = t;
                return;
            }
        }
    }

    private synchronized void sync() throws Exception {
        // the CSI snapshot controller's part: a new VolumeSnapshot gets its point in time
        for (GenericKubernetesResource snapshot : client.genericKubernetesResources(io.mekha.operator.service.DiskSnapshots.SNAPSHOTS)
                .inNamespace(namespace).list().getItems()) {
            if (snapshot.getAdditionalProperties().get("status") == null) {
                snapshot.getAdditionalProperties().put("status", Map.of("creationTime", java.time.Instant.now().toString(), "readyToUse", true));
                client.genericKubernetesResources(io.mekha.operator.service.DiskSnapshots.SNAPSHOTS).inNamespace(namespace).resource(snapshot).update();
                snapshotsCut.add(snapshot.getMetadata().getName() + "@" + java.time.Instant.now());
            }
        }
        for (String vm : machines.keySet()) {
            GenericKubernetesResource vmi = client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace).withName(vm).get();
            LauncherPods.Launcher launcher = running.get(vm);
            if (launcher != null && (vmi == null || !vmi.getMetadata().getUid().equals(runningUid.get(vm)))) {
                LauncherPods.crash(launcher); // the instance was deleted: its pod goes, and QEMU with it
                running.remove(vm);
                deletePod(vm);
            }
            if (vmi == null) {
                GenericKubernetesResource machine = client.genericKubernetesResources(KubeVirt.VIRTUAL_MACHINES).inNamespace(namespace).withName(vm).get();
                if (machine != null && runs(machine)) {
                    start(vm, machine);
                }
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static boolean runs(GenericKubernetesResource machine) {
        Map<String, Object> spec = (Map<String, Object>) machine.getAdditionalProperties().getOrDefault("spec", Map.of());
        return Boolean.TRUE.equals(spec.get("running")) || "Always".equals(spec.get("runStrategy"));
    }

    @SuppressWarnings("unchecked")
    private void start(String vm, GenericKubernetesResource machine) throws Exception {
        Map<String, Object> spec = (Map<String, Object>) machine.getAdditionalProperties().getOrDefault("spec", Map.of());
        Map<String, Object> template = (Map<String, Object>) spec.getOrDefault("template", Map.of());
        Map<String, String> annotations = (Map<String, String>) ((Map<String, Object>) template.getOrDefault("metadata", Map.of()))
                .getOrDefault("annotations", Map.of());
        Map<String, String> selector = (Map<String, String>) ((Map<String, Object>) template.getOrDefault("spec", Map.of()))
                .getOrDefault("nodeSelector", Map.of());
        String node = selector.getOrDefault("kubernetes.io/hostname", defaultNode);
        GenericKubernetesResource vmi = client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace).resource(
                new GenericKubernetesResourceBuilder().withApiVersion("kubevirt.io/v1").withKind("VirtualMachineInstance")
                        .withNewMetadata().withName(vm).withNamespace(namespace).withAnnotations(new LinkedHashMap<>(annotations))
                        .withLabels(machine.getMetadata().getLabels()).endMetadata()
                        .withAdditionalProperties(Map.of("status", Map.of("phase", "Running", "nodeName", node))).build()).create();
        StringBuilder json = new StringBuilder();
        annotations.forEach((k, v) -> json.append(json.length() == 0 ? "" : ", ").append('"').append(k).append("\": \"").append(v).append('"'));
        // the launcher pod as the API shows it: created by the instance, running on its node; QEMU runs in its compute
        // container's cgroup (the agent acts only on the QEMU in the pod the operator names from this object)
        String podName = "virt-launcher-" + vm + "-" + (++pods_);
        io.fabric8.kubernetes.api.model.Pod pod = client.pods().inNamespace(namespace).resource(new io.fabric8.kubernetes.api.model.PodBuilder()
                .withNewMetadata().withName(podName).withNamespace(namespace).addToLabels("kubevirt.io", "virt-launcher")
                .addToLabels(io.mekha.operator.service.LauncherPodIdentities.CREATED_BY, vmi.getMetadata().getUid()).endMetadata()
                .withNewSpec().withNodeName(node).endSpec().build()).create();
        LauncherPods.Launcher launcher = pods.launchInPod(vm + "-pod" + pods_, namespace, machines.get(vm), json.toString(),
                pod.getMetadata().getUid());
        pod.setStatus(new io.fabric8.kubernetes.api.model.PodStatusBuilder().withPhase("Running").addNewContainerStatus().withName("compute")
                .withContainerID("containerd://" + launcher.pod().containerId()).endContainerStatus().build());
        client.pods().inNamespace(namespace).resource(pod).updateStatus();
        podOf.put(vm, podName);
        nodeOfPod.put(launcher.pod(), node);
        running.put(vm, launcher);
        runningUid.put(vm, vmi.getMetadata().getUid());
        history.computeIfAbsent(vm, k -> new CopyOnWriteArrayList<>()).add(launcher);
    }

    private void deletePod(String vm) {
        String pod = podOf.remove(vm);
        if (pod != null) {
            client.pods().inNamespace(namespace).withName(pod).delete();
        }
    }

    /**
     * Whether a launcher QEMU in the process table is one of a pod scheduled on {@code node}: what that node's agent sees
     * (every node's pods share this machine's process table).
     */
    boolean onNode(io.mekha.agent.kubevirt.LauncherQemu qemu, String node) {
        return nodeOfPod.entrySet().stream().anyMatch(e -> e.getValue().equals(node) && qemu.notIn(e.getKey()) == null);
    }

    /** The node the VM's current launcher runs on. */
    String nodeOf(String vm) {
        return nodeOfPod.get(launcher(vm).pod());
    }

    /** The VM's current launcher. */
    LauncherPods.Launcher launcher(String vm) {
        LauncherPods.Launcher l = running.get(vm);
        if (l == null) {
            throw new AssertionError("no launcher runs VM " + vm + (failure == null ? "" : "; the fake controller failed: " + failure));
        }
        return l;
    }

    /** The VM's pod dies with its node: QEMU is killed, and its instance goes, as KubeVirt would mark it failed and replace it. */
    synchronized void crash(String vm) throws Exception {
        LauncherPods.crash(launcher(vm));
        running.remove(vm);
        deletePod(vm);
        client.genericKubernetesResources(KubeVirt.INSTANCES).inNamespace(namespace).withName(vm).delete();
    }

    void check() {
        if (failure != null) {
            throw new AssertionError("the fake KubeVirt controller failed", failure);
        }
    }

    @Override
    public void close() throws InterruptedException {
        stopped = true;
        loop.interrupt();
        loop.join();
    }
}
