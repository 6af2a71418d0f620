package io.mekha.agent.server;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.kubevirt.KubeVirtVmRuntime;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.runtime.VmRuntime;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.concurrent.CountDownLatch;

/**
 * Runs an agent as a process of its own: {@code --node NAME --listen HOST:PORT --work-dir DIR
 * (--token-file FILE | --allow-user USER... [--audience A] [--kube-api URL]) [--accelerator tcg|kvm|auto] [--host-segments]
 * [--runtime local|kubevirt [--proc DIR] [--level0-dir DIR]] [--tls-from-csr [--tls-namespace NS] [--partner-listen HOST:PORT]]
 * [--lend-memory SIZE]}. With {@code --tls-from-csr} it serves over mutual TLS with a certificate the operator signs
 * ({@link AgentCertificate}), and takes other nodes' level-0 copies on its partner listener ({@link PartnerStreamServer}).
 * The KubeVirt runtime ({@code --runtime kubevirt}, the
 * DaemonSet's) drives the QEMUs of the VMIs on its node and holds level 0 in {@code --level0-dir} (a tmpfs).
 * With {@code --allow-user} callers are Kubernetes identities checked by TokenReview (the DaemonSet's way);
 * with {@code --token-file} they hold a shared token (the local mode's way). Prints {@code MEKHA-AGENT listening <uri> node=<name>}
 * once it serves. Its QEMU processes die with it. Also what {@code mekha agent} runs.
 */
public final class AgentMain {
    private AgentMain() {}

    public static void main(String[] args) throws Exception {
        String node = "local";
        String listen = "127.0.0.1:0";
        Path workDir = null;
        Path tokenFile = null;
        Path level1 = null;
        Accelerator accel = Accelerator.TCG;
        boolean segments = false;
        java.util.List<String> allowUsers = new java.util.ArrayList<>();
        java.util.List<String> audiences = new java.util.ArrayList<>();
        String kubeApi = null;
        String runtimeKind = "local";
        Path proc = Path.of("/proc");
        Path level0 = null;
        boolean tls = false;
        Partnering partnering = Partnering.DEFAULT;
        String tlsNamespace = System.getenv().getOrDefault("POD_NAMESPACE", "mekha-system");
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--host-segments")) {
                segments = true;
                continue;
            }
            if (args[i].equals("--tls-from-csr")) {
                tls = true;
                continue;
            }
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--node" -> node = value;
                case "--listen" -> listen = value;
                case "--work-dir" -> workDir = Path.of(value);
                case "--token-file" -> tokenFile = Path.of(value);
                case "--level1-dir" -> level1 = Path.of(value).toAbsolutePath();
                case "--accelerator" -> accel = Accelerator.parse(value);
                case "--allow-user" -> allowUsers.add(value);
                case "--audience" -> audiences.add(value);
                case "--kube-api" -> kubeApi = value;
                case "--runtime" -> runtimeKind = value;
                case "--proc" -> proc = Path.of(value);
                case "--level0-dir" -> level0 = Path.of(value).toAbsolutePath();
                case "--tls-namespace" -> tlsNamespace = value;
                case "--partner-listen" -> partnering = new Partnering(value, partnering.lendMiB());
                case "--lend-memory" -> partnering = new Partnering(partnering.listen(), io.mekha.model.MemorySize.parseMiB(value));
                default -> {
                    System.err.println("unknown argument " + args[i]
                            + "; usage: --node NAME --listen HOST:PORT --work-dir DIR (--token-file FILE | --allow-user USER [--audience A]"
                            + " [--kube-api URL]) [--level1-dir DIR] [--accelerator tcg|kvm|auto]"
                            + " [--host-segments] [--runtime local|kubevirt] [--proc DIR] [--level0-dir DIR] [--tls-from-csr [--tls-namespace NS]"
                            + " [--partner-listen HOST:PORT]] [--lend-memory SIZE]");
                    System.exit(2);
                }
            }
            i++;
        }
        if (workDir == null || (tokenFile == null) == allowUsers.isEmpty()) {
            System.err.println("--work-dir is required, and exactly one of --token-file (shared token) and --allow-user (Kubernetes identities)");
            System.exit(2);
        }
        if (tls && allowUsers.isEmpty()) {
            System.err.println("--tls-from-csr asks the Kubernetes API for the agent's certificate: it goes with --allow-user (Kubernetes identities)");
            System.exit(2);
        }
        VmRuntime runtime;
        try {
            runtime = runtime(runtimeKind, RuntimeConfig.defaults(workDir.toAbsolutePath()).withAccelerator(accel), proc,
                    level0 == null ? workDir.toAbsolutePath().resolve("level0") : level0);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        run(node, listen, workDir, level1 == null ? workDir.resolve("level1") : level1, authenticator(tokenFile, allowUsers, audiences.isEmpty() ? java.util.List.of(io.mekha.model.AgentAudience.of(node)) : audiences, kubeApi),
                runtime, segments, tls ? tls(kubeApi, tlsNamespace, node) : null, partnering);
    }

    /**
     * How the agent takes part in level 0 on partner nodes.
     *
     * @param listen host:port of the partner listener, where other nodes' agents hand in copies (with mutual TLS only)
     * @param lendMiB the most memory lent to other nodes' copies (null: only the node's memory bounds them)
     */
    public record Partnering(String listen, Long lendMiB) {
        public static final Partnering DEFAULT = new Partnering("0.0.0.0:7071", null);
    }

    /**
     * The agent's TLS from a certificate the operator signs (blocking until it is issued: until then the agent does not
     * serve, its probes fail and the operator sees the pod as not ready).
     */
    public static AgentCertificate tls(String kubeApi, String namespace, String node) throws InterruptedException {
        return AgentCertificate.obtain(kube(kubeApi), namespace, node, Clock.systemUTC(), java.time.Duration.ofMinutes(10));
    }

    private static io.fabric8.kubernetes.client.KubernetesClient kube(String kubeApi) {
        io.fabric8.kubernetes.client.Config config = kubeApi == null ? io.fabric8.kubernetes.client.Config.autoConfigure(null)
                : new io.fabric8.kubernetes.client.ConfigBuilder().withMasterUrl(kubeApi).build();
        return new io.fabric8.kubernetes.client.KubernetesClientBuilder().withConfig(config).build();
    }

    /**
     * Who may call the agent: holders of the token in {@code tokenFile}, or, when {@code allowUsers} is
     * not empty, those Kubernetes identities, checked by TokenReview against the API server at
     * {@code kubeApi} (null: the in-cluster or kubeconfig configuration).
     */
    public static AgentAuthenticator authenticator(Path tokenFile, java.util.List<String> allowUsers, java.util.List<String> audiences,
                                                   String kubeApi) throws java.io.IOException {
        if (allowUsers.isEmpty()) {
            return BearerToken.read(tokenFile);
        }
        return new TokenReviewAuthenticator(kube(kubeApi), java.util.Set.copyOf(allowUsers), audiences,
                Clock.systemUTC());
    }

    /**
     * The runtime {@code kind} names: "local" (QEMUs the agent starts, shadows for level 0) or "kubevirt" (the VMIs' QEMUs
     * found through {@code proc}, level 0 as streams in {@code level0}).
     */
    public static VmRuntime runtime(String kind, RuntimeConfig config, Path proc, Path level0) {
        return switch (kind) {
            case "local" -> new LocalVmRuntime(config);
            case "kubevirt" -> new KubeVirtVmRuntime(config, proc, level0);
            default -> throw new IllegalArgumentException("unknown runtime '" + kind + "': use local or kubevirt");
        };
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("'" + hostPort + "' is not host:port");
        }
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    /** Serves until the process is ended. */
    public static void run(String node, String listen, Path workDir, Path level1, AgentAuthenticator auth, VmRuntime runtime,
                           boolean hostSegments) throws Exception {
        run(node, listen, workDir, level1, auth, runtime, hostSegments, null, Partnering.DEFAULT);
    }

    /**
     * Serves until the process is ended; over mutual TLS when {@code tls} is given, and then with a partner listener
     * where other nodes' agents hand in level-0 copies ({@code partnering}).
     */
    public static void run(String node, String listen, Path workDir, Path level1, AgentAuthenticator auth, VmRuntime runtime,
                           boolean hostSegments, AgentCertificate tls, Partnering partnering) throws Exception {
        Files.createDirectories(workDir);
        AgentService service = new AgentService(node, runtime, new RendezvousClock(Clock.systemUTC()), level1);
        if (hostSegments) {
            service.hostingSegments();
        }
        if (partnering.lendMiB() != null) {
            service.lendingAtMost(partnering.lendMiB());
        }
        AgentHttpServer server = new AgentHttpServer(service, auth, address(listen), tls == null ? null : tls.sslContext()).start();
        PartnerStreamServer partners = null;
        if (tls != null) {
            service.sendingCopiesWith(tls::partnerClient);
            partners = new PartnerStreamServer(service, address(partnering.listen()), tls.partnerServerContext()).start();
        }
        PartnerStreamServer partnerListener = partners;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            if (partnerListener != null) {
                partnerListener.close();
            }
            service.close();
        }, "agent-shutdown"));
        System.out.println("MEKHA-AGENT listening " + server.uri() + " node=" + node + " runtime=" + runtime.kind() + " level1=" + level1
                + (partners == null ? "" : " partners=" + partners.port()));
        System.out.flush();
        new CountDownLatch(1).await();
    }
}
