package io.mekha.agent.server;

import io.mekha.agent.AgentService;
import io.mekha.agent.RendezvousClock;
import io.mekha.agent.runtime.Accelerator;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.runtime.RuntimeConfig;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.concurrent.CountDownLatch;

/**
 * Runs an agent as a process of its own: {@code --node NAME --listen HOST:PORT --work-dir DIR
 * --token-file FILE [--accelerator tcg|kvm|auto] [--host-segments]}. Prints {@code MEKHA-AGENT listening <uri> node=<name>}
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
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--host-segments")) {
                segments = true;
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
                default -> {
                    System.err.println("unknown argument " + args[i]
                            + "; usage: --node NAME --listen HOST:PORT --work-dir DIR --token-file FILE [--level1-dir DIR] [--accelerator tcg|kvm|auto]"
                            + " [--host-segments]");
                    System.exit(2);
                }
            }
            i++;
        }
        if (workDir == null || tokenFile == null) {
            System.err.println("--work-dir and --token-file are required");
            System.exit(2);
        }
        run(node, listen, workDir, level1 == null ? workDir.resolve("level1") : level1, BearerToken.read(tokenFile), accel, segments);
    }

    /** Serves until the process is ended. */
    public static void run(String node, String listen, Path workDir, Path level1, BearerToken token, Accelerator accel, boolean hostSegments)
            throws Exception {
        int colon = listen.lastIndexOf(':');
        InetSocketAddress address = new InetSocketAddress(listen.substring(0, colon), Integer.parseInt(listen.substring(colon + 1)));
        Files.createDirectories(workDir);
        LocalVmRuntime runtime = new LocalVmRuntime(RuntimeConfig.defaults(workDir).withAccelerator(accel));
        AgentService service = new AgentService(node, runtime, new RendezvousClock(Clock.systemUTC()), level1);
        if (hostSegments) {
            service.hostingSegments();
        }
        AgentHttpServer server = new AgentHttpServer(service, token, address).start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            service.close();
        }, "agent-shutdown"));
        System.out.println("MEKHA-AGENT listening " + server.uri() + " node=" + node + " level1=" + level1);
        System.out.flush();
        new CountDownLatch(1).await();
    }
}
