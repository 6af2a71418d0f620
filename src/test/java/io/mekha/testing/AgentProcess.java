package io.mekha.testing;

import io.mekha.agent.server.AgentMain;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** A Mekha agent running as a separate JVM process, so the wire protocol is exercised for real. */
public final class AgentProcess implements AutoCloseable {
    private final Process process;
    private final URI uri;

    private AgentProcess(Process process, URI uri) {
        this.process = process;
        this.uri = uri;
    }

    public static AgentProcess start(String node, Path workDir, Path tokenFile) throws Exception {
        return start(node, workDir, List.of("--token-file", tokenFile.toString()));
    }

    /** @param authArgs how callers are authenticated: {@code --token-file F} or {@code --allow-user U --kube-api URL} */
    public static AgentProcess start(String node, Path workDir, List<String> authArgs) throws Exception {
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new java.util.ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                AgentMain.class.getName(), "--node", node, "--listen", "127.0.0.1:0", "--work-dir", workDir.toString()));
        command.addAll(authArgs);
        Process process = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.PIPE)
                .start();
        BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream()));
        CompletableFuture<URI> listening = CompletableFuture.supplyAsync(() -> {
            try {
                String line;
                while ((line = out.readLine()) != null) {
                    if (line.startsWith("MEKHA-AGENT listening ")) {
                        URI found = URI.create(line.split(" ")[2]);
                        Thread drain = new Thread(() -> drain(node, out), "agent-" + node + "-output");
                        drain.setDaemon(true);
                        drain.start();
                        return found;
                    }
                }
                throw new IllegalStateException("agent process exited before listening");
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
        try {
            return new AgentProcess(process, listening.get(60, TimeUnit.SECONDS));
        } catch (Exception e) {
            process.destroyForcibly();
            throw e;
        }
    }

    /** Keeps the pipe flowing; the agent's warnings and errors go to the test's output, with its node's name. */
    private static void drain(String node, BufferedReader out) {
        try {
            String line;
            boolean shown = false;
            while ((line = out.readLine()) != null) {
                boolean worth = line.contains("WARN") || line.contains("ERROR") || line.contains("SEVERE");
                if (worth || (shown && line.startsWith("\t"))) {
                    System.out.println("[agent " + node + "] " + line);
                }
                shown = worth || (shown && line.startsWith("\t"));
            }
        } catch (IOException ignored) {
            // the process ended
        }
    }

    public URI uri() {
        return uri;
    }

    public long pid() {
        return process.pid();
    }

    /** Kills the agent process at once (SIGKILL), as a crashing node would. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    @Override
    public void close() throws InterruptedException {
        kill();
    }
}
