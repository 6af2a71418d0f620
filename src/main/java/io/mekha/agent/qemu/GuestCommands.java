package io.mekha.agent.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mekha.agent.api.AgentDtos.ExecResult;
import io.mekha.qmp.QgaClient;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;

/**
 * Runs a command in a guest and collects its output through qemu-guest-agent's {@code guest-exec}
 * (a virtio-serial channel): no typing into a serial console, which drops bulk input.
 */
public final class GuestCommands {
    private static final Duration CALL = Duration.ofSeconds(10);
    private static final Duration POLL = Duration.ofMillis(100);

    private GuestCommands() {}

    /** Runs {@code argv} (argv[0] an absolute path in the guest) and waits up to {@code timeout} for it to end. */
    public static ExecResult run(QemuVm vm, List<String> argv, String stdin, Duration timeout) throws QmpException, InterruptedException {
        if (argv == null || argv.isEmpty()) {
            throw new IllegalArgumentException("name the command to run: argv[0] is a path in the guest");
        }
        if (!vm.spec().guestAgent()) {
            throw new QmpException("VM '" + vm.name() + "' has no guest agent port (guestAgent: true in its description)");
        }
        return run(vm.paths().guestAgentSocket(), argv, stdin, timeout);
    }

    /** Runs {@code argv} in the guest whose qemu-guest-agent listens behind {@code qgaSocket}. */
    public static ExecResult run(java.nio.file.Path qgaSocket, List<String> argv, String stdin, Duration timeout)
            throws QmpException, InterruptedException {
        if (argv == null || argv.isEmpty()) {
            throw new IllegalArgumentException("name the command to run: argv[0] is a path in the guest");
        }
        try (QgaClient qga = QgaClient.connect(qgaSocket, CALL)) {
            ObjectNode args = QmpClient.args().put("path", argv.get(0)).put("capture-output", true);
            argv.subList(1, argv.size()).forEach(args.putArray("arg")::add);
            if (stdin != null) {
                args.put("input-data", Base64.getEncoder().encodeToString(stdin.getBytes(StandardCharsets.UTF_8)));
            }
            long pid = qga.execute("guest-exec", args, CALL).path("pid").asLong();
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                JsonNode status = qga.execute("guest-exec-status", QmpClient.args().put("pid", pid), CALL);
                if (status.path("exited").asBoolean()) {
                    return new ExecResult(List.copyOf(argv), status.has("exitcode") ? status.path("exitcode").asInt() : -status.path("signal").asInt(),
                            decode(status.path("out-data")), decode(status.path("err-data")),
                            status.path("out-truncated").asBoolean() || status.path("err-truncated").asBoolean());
                }
                if (System.nanoTime() > deadline) {
                    return new ExecResult(List.copyOf(argv), null, "", "", false);
                }
                Thread.sleep(POLL.toMillis());
            }
        }
    }

    private static String decode(JsonNode data) {
        return data.isMissingNode() || data.isNull() ? "" : new String(Base64.getDecoder().decode(data.asText()), StandardCharsets.UTF_8);
    }
}
