package io.mekha.local.cli;

import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.server.AgentMain;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code mekha agent}: runs a node agent in the foreground (what {@code mekha up} starts in the background). */
@Command(name = "agent", mixinStandardHelpOptions = true, description = "Run a Mekha node agent (HTTP API for the coordinator).")
public class AgentCommand implements Callable<Integer> {

    @Option(names = "--node", defaultValue = "local", description = "this node's name (default: ${DEFAULT-VALUE})")
    String node;

    @Option(names = "--listen", defaultValue = "127.0.0.1:0", description = "host:port to serve on (default: ${DEFAULT-VALUE})")
    String listen;

    @Option(names = "--work-dir", required = true, description = "where VM consoles, sockets and logs go")
    Path workDir;

    @Option(names = "--token-file", description = "file holding the shared bearer token (mode 600): the local mode's authentication")
    Path tokenFile;

    @Option(names = "--allow-user", description = "a Kubernetes identity allowed to call the agent, checked by TokenReview"
            + " (e.g. system:serviceaccount:mekha-system:mekha-operator); repeatable; replaces --token-file")
    java.util.List<String> allowUsers = new java.util.ArrayList<>();

    @Option(names = "--audience", description = "audience callers' tokens must carry (default: mekha-agent); repeatable")
    java.util.List<String> audiences = new java.util.ArrayList<>();

    @Option(names = "--kube-api", description = "Kubernetes API server URL (default: in-cluster configuration or kubeconfig)")
    String kubeApi;

    @Option(names = "--level1-dir", description = "this node's level-1 checkpoint directory (default: <work-dir>/level1)")
    java.nio.file.Path level1;

    @Option(names = "--accelerator", defaultValue = "tcg", description = "tcg, kvm or auto (default: ${DEFAULT-VALUE})")
    String accelerator;

    @Option(names = "--host-segments", description = "host the L2 segment hubs of the VMs this agent starts")
    boolean hostSegments;

    @Option(names = "--runtime", defaultValue = "local", description = "local (QEMUs this agent starts) or kubevirt (the QEMUs of the"
            + " VirtualMachineInstances on this node; the DaemonSet's) (default: ${DEFAULT-VALUE})")
    String runtime;

    @Option(names = "--proc", defaultValue = "/proc", description = "the host's process table, for --runtime kubevirt (default: ${DEFAULT-VALUE})")
    Path proc;

    @Option(names = "--level0-dir", description = "where level 0 is held as streams with --runtime kubevirt; a tmpfs (default: <work-dir>/level0)")
    Path level0;

    @Option(names = "--tls-from-csr", description = "serve over mutual TLS, with a certificate the operator signs"
            + " (CertificateSigningRequest to mekha.io/agent); callers must show the operator's client certificate. Needs --allow-user")
    boolean tls;

    @Option(names = "--tls-namespace", defaultValue = "${env:POD_NAMESPACE:-mekha-system}",
            description = "where the operator publishes its CA (ConfigMap mekha-agent-ca) (default: ${DEFAULT-VALUE})")
    String tlsNamespace;

    @Option(names = "--partner-listen", defaultValue = "0.0.0.0:7071", description = "with --tls-from-csr: host:port where other"
            + " nodes' agents hand in level-0 copies of their VMs (mutual TLS, agents only) (default: ${DEFAULT-VALUE})")
    String partnerListen;

    @Option(names = "--lend-memory", description = "the most memory this node lends to other nodes' level-0 copies, e.g. 8Gi"
            + " (default: only the node's memory and the agent's limit bound them)")
    String lendMemory;

    @Override
    public Integer call() throws Exception {
        if ((tokenFile == null) == allowUsers.isEmpty()) {
            System.err.println("give exactly one of --token-file (shared token) and --allow-user (Kubernetes identities)");
            return 2;
        }
        if (tls && allowUsers.isEmpty()) {
            System.err.println("--tls-from-csr asks the Kubernetes API for the agent's certificate: it goes with --allow-user");
            return 2;
        }
        Long lendMiB = null;
        if (lendMemory != null) {
            try {
                lendMiB = io.mekha.model.MemorySize.parseMiB(lendMemory);
            } catch (IllegalArgumentException | ArithmeticException e) {
                System.err.println("--lend-memory: " + e.getMessage());
                return 2;
            }
        }
        io.mekha.agent.qemu.RuntimeConfig config = io.mekha.agent.qemu.RuntimeConfig.defaults(workDir.toAbsolutePath())
                .withAccelerator(Accelerator.parse(accelerator));
        io.mekha.agent.runtime.VmRuntime vms;
        try {
            vms = AgentMain.runtime(runtime, config, proc, level0 != null ? level0.toAbsolutePath() : workDir.toAbsolutePath().resolve("level0"));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            return 2;
        }
        AgentMain.run(node, listen, workDir, level1 != null ? level1.toAbsolutePath() : workDir.toAbsolutePath().resolve("level1"),
                AgentMain.authenticator(tokenFile, allowUsers, audiences, kubeApi), vms, hostSegments,
                tls ? AgentMain.tls(kubeApi, tlsNamespace, node) : null, new AgentMain.Partnering(partnerListen, lendMiB));
        return 0;
    }
}
