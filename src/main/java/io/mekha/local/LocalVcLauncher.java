package io.mekha.local;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.server.AgentMain;
import io.mekha.agent.server.BearerToken;
import io.mekha.model.VmSpec;
import io.mekha.protocol.AgentCallException;
import io.mekha.protocol.AgentClient;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Brings a local VC up and down: {@code up} starts a node agent in the background (it outlives
 * this command, and its QEMUs die with it) and asks it to start every VM; {@code down} stops the
 * VMs and the agent and forgets the VC.
 */
public final class LocalVcLauncher {
    private static final Duration AGENT_START = Duration.ofSeconds(60);

    private LocalVcLauncher() {}

    public static LocalVcState up(Path file, Accelerator accelerator, Consumer<String> progress)
            throws InvalidSpecException, IOException, InterruptedException, AgentCallException {
        VirtualClusterSpec spec = VirtualClusterFile.load(file);
        LocalVcState state = LocalVcState.of(spec.name());
        if (state.isUp()) {
            throw new InvalidSpecException("VC '" + spec.name() + "' is already up (agent " + state.agent().uri()
                    + "); run 'mekha down " + spec.name() + "' first");
        }
        Files.createDirectories(state.vmsDir());
        Files.copy(file, state.specFile(), StandardCopyOption.REPLACE_EXISTING);
        BearerToken token = BearerToken.random();
        token.write(state.tokenFile());
        Accelerator accel = accelerator != null ? accelerator : spec.accelerator();
        progress.accept("starting the node agent for VC '" + spec.name() + "' (log: " + state.agentLog() + ")");
        Process agent = spawnAgent(state, accel);
        URI uri = awaitListening(agent, state.agentLog());
        state.writeAgent(new LocalVcState.AgentEndpoint(uri, agent.pid()));
        AgentClient client = state.client();
        try {
            for (VmSpec vm : spec.vms()) {
                progress.accept("booting " + vm.name() + " (" + vm.memoryMiB() + " MiB, " + vm.cpus() + " vCPU"
                        + (vm.network() == null ? "" : ", " + vm.network().address() + " on segment " + vm.network().segment()) + ")");
                client.startVm(vm);
            }
        } catch (AgentCallException | RuntimeException e) {
            down(state, progress);
            throw e;
        }
        return state;
    }

    private static Process spawnAgent(LocalVcState state, Accelerator accel) throws IOException {
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        String classpath = System.getProperty("java.class.path");
        List<String> command = new ArrayList<>(List.of("setsid", java));
        List<String> agentArgs = List.of("--node", "local", "--listen", "127.0.0.1:0", "--work-dir", state.vmsDir().toString(),
                "--token-file", state.tokenFile().toString(), "--accelerator", accel.name().toLowerCase(), "--host-segments");
        if (classpath.endsWith("quarkus-run.jar")) {
            command.addAll(List.of("-jar", classpath, "agent"));
        } else {
            command.addAll(List.of("-cp", classpath, AgentMain.class.getName()));
        }
        command.addAll(agentArgs);
        return new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(state.agentLog().toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .start();
    }

    private static URI awaitListening(Process agent, Path log) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + AGENT_START.toNanos();
        while (System.nanoTime() < deadline) {
            if (Files.exists(log)) {
                for (String line : Files.readAllLines(log)) {
                    if (line.startsWith("MEKHA-AGENT listening ")) {
                        return URI.create(line.split(" ")[2]);
                    }
                }
            }
            if (!agent.isAlive()) {
                throw new IOException("the node agent exited at start; its log " + log + " says:\n" + Files.readString(log));
            }
            Thread.sleep(100);
        }
        agent.destroyForcibly();
        throw new IOException("the node agent did not start within " + AGENT_START + "; see " + log);
    }

    /** Stops every VM and the agent, and removes the VC's state. */
    public static void down(LocalVcState state, Consumer<String> progress) throws IOException, InterruptedException {
        if (state.isUp()) {
            LocalVcState.AgentEndpoint endpoint = state.agent();
            try {
                AgentClient client = state.client();
                for (VmInfo vm : client.vms()) {
                    progress.accept("stopping " + vm.name());
                    try {
                        client.stopVm(vm.name());
                    } catch (AgentCallException e) {
                        progress.accept("  " + e.getMessage() + " (the agent's exit will end it)");
                    }
                }
            } catch (AgentCallException e) {
                progress.accept("agent unreachable (" + e.getMessage() + "); stopping its process");
            }
            ProcessHandle.of(endpoint.pid()).ifPresent(agent -> {
                progress.accept("stopping the node agent (pid " + agent.pid() + ")");
                agent.destroy();
                try {
                    agent.onExit().get(15, java.util.concurrent.TimeUnit.SECONDS);
                } catch (Exception e) {
                    agent.destroyForcibly();
                }
            });
        }
        if (Files.isDirectory(state.dir())) {
            try (Stream<Path> walk = Files.walk(state.dir())) {
                for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }
}
