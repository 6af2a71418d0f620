package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;

/**
 * A shell command in a guest through libvirt's own guest agent channel ({@code virsh qemu-agent-command}), as KubeVirt
 * reaches the guest agent: libvirt holds that channel, so nothing else can.
 */
final class GuestExec {
    private static final ObjectMapper JSON = new ObjectMapper();

    private GuestExec() {
    }

    /** Runs {@code script} under {@code /bin/sh -c} in the guest; its stdout. Fails the test if it exits non-zero. */
    static String run(LibvirtPods.Vmi vmi, String script) throws Exception {
        ObjectNode exec = JSON.createObjectNode().put("execute", "guest-exec");
        exec.putObject("arguments").put("path", "/bin/sh").put("capture-output", true).putArray("arg").add("-c").add(script);
        JsonNode started = call(vmi, exec.toString(), Duration.ofSeconds(60));
        long pid = started.path("return").path("pid").asLong();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            JsonNode status = call(vmi, "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":" + pid + "}}", Duration.ofSeconds(10))
                    .path("return");
            if (status.path("exited").asBoolean()) {
                String out = new String(Base64.getDecoder().decode(status.path("out-data").asText("")), StandardCharsets.UTF_8);
                assertThat(status.path("exitcode").asInt()).as("guest command %s in %s: %s", script, vmi.domain(), out).isZero();
                return out;
            }
            assertThat(System.nanoTime()).as("guest command %s in %s ended", script, vmi.domain()).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    /** One guest agent command through libvirt, tried again while the guest's agent is not up yet. */
    static JsonNode call(LibvirtPods.Vmi vmi, String command, Duration patience) throws Exception {
        long deadline = System.nanoTime() + patience.toNanos();
        while (true) {
            LibvirtPods.Virsh v = LibvirtPods.virsh(vmi.pod(), List.of("qemu-agent-command", vmi.domain(), command).toArray(String[]::new));
            if (v.ok()) {
                return JSON.readTree(v.out());
            }
            assertThat(System.nanoTime()).as("the guest agent of %s answers: %s", vmi.domain(), v.out()).isLessThan(deadline);
            Thread.sleep(300);
        }
    }
}
