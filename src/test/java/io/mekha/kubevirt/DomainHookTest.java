package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * qemu-hooks/onDefineDomain, run as KubeVirt's sidecar-shim runs it, on a domain in the shape
 * virt-launcher generates; its output must be a domain libvirt accepts (libvirt's own schema,
 * through virt-xml-validate) with Mekha's monitor, clock and incoming arguments in place.
 */
@Tag("fast")
class DomainHookTest {
    static final Path HOOK = Path.of("qemu-hooks", "onDefineDomain");
    static final String QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0";
    static final String MONITOR = "socket,id=mekha-qmp,path=/var/run/kubevirt-private/mekha-qmp.sock,server=on,wait=off";

    @TempDir
    Path work;

    record Run(int exit, String out, String err) {}

    @Test
    void aPlainVmiGetsMekhasMonitorAndAnRtcThatFollowsGuestTime() throws Exception {
        String input = sample();
        assertThat(validate(input)).as("the sample itself is a valid libvirt domain").isEmpty();
        Run run = hook(vmi(""), input);
        assertThat(run.exit()).as(run.err()).isZero();
        assertThat(validate(run.out())).as("libvirt's schema accepts the hook's domain").isEmpty();

        Document out = parse(run.out());
        assertThat(qemuArgs(out)).containsExactly("-chardev", MONITOR, "-mon", "chardev=mekha-qmp,mode=control");
        Element rtc = timer(out, "rtc");
        assertThat(rtc.getAttribute("track")).isEqualTo("guest");
        assertThat(rtc.getAttribute("tickpolicy")).as("KubeVirt's own setting stays").isEqualTo("catchup");
        // everything KubeVirt generated is still there
        Document in = parse(input);
        for (String tag : List.of("disk", "interface", "channel", "serial", "controller", "timer")) {
            assertThat(out.getElementsByTagName(tag).getLength()).as(tag).isEqualTo(in.getElementsByTagName(tag).getLength());
        }
        assertThat(out.getElementsByTagNameNS("http://kubevirt.io", "uid").item(0).getTextContent())
                .isEqualTo("5d3c6b6e-2f4e-4f53-9a2e-7b7b0c1f2a10");
    }

    @Test
    void aVmiBeingRestoredStartsWaitingForIncomingState() throws Exception {
        Run run = hook(vmi("\"mekha.io/restore-from\": \"hpc.cp1.0a1b2c3d\""), sample());
        assertThat(run.exit()).as(run.err()).isZero();
        assertThat(validate(run.out())).isEmpty();
        assertThat(qemuArgs(parse(run.out()))).containsExactly("-chardev", MONITOR, "-mon", "chardev=mekha-qmp,mode=control",
                "-incoming", "defer");
    }

    @Test
    void stepAndSlewPoliciesLeaveTheClockAsKubeVirtMadeIt() throws Exception {
        for (String policy : List.of("Step", "Slew")) {
            Run run = hook(vmi("\"mekha.io/time-policy\": \"" + policy + "\""), sample());
            assertThat(run.exit()).as(run.err()).isZero();
            assertThat(timer(parse(run.out()), "rtc").hasAttribute("track")).as(policy).isFalse();
            assertThat(qemuArgs(parse(run.out()))).contains(MONITOR);
        }
    }

    @Test
    void runningTheHookTwiceAddsNothingTwiceAndADomainWithoutAClockGetsOne() throws Exception {
        Run once = hook(vmi(""), sample());
        Run twice = hook(vmi(""), once.out());
        assertThat(qemuArgs(parse(twice.out()))).containsExactly("-chardev", MONITOR, "-mon", "chardev=mekha-qmp,mode=control");

        String noClock = sample().replaceAll("(?s)<clock.*?</clock>", "");
        Run run = hook(vmi(""), noClock);
        assertThat(validate(run.out())).isEmpty();
        assertThat(timer(parse(run.out()), "rtc").getAttribute("track")).isEqualTo("guest");
    }

    @Test
    void aBadAnnotationOrDomainFailsTheVmiWithAReasonAndNoXml() throws Exception {
        Run run = hook(vmi("\"mekha.io/time-policy\": \"Frozen\""), sample());
        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.out()).isBlank();
        assertThat(run.err()).contains("VMI hpc/vm1").contains("mekha.io/time-policy is 'Frozen'").contains("Virtual, Step, Slew");

        Run broken = hook(vmi(""), "<domain><name>x</name>");
        assertThat(broken.exit()).isEqualTo(1);
        assertThat(broken.err()).contains("VMI hpc/vm1");
    }

    static String sample() throws IOException {
        try (var in = DomainHookTest.class.getResourceAsStream("/kubevirt/domain-vm1.xml")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static String vmi(String annotations) {
        return "{\"apiVersion\": \"kubevirt.io/v1\", \"kind\": \"VirtualMachineInstance\", \"metadata\": {\"name\": \"vm1\", \"namespace\": \"hpc\","
                + " \"uid\": \"5d3c6b6e-2f4e-4f53-9a2e-7b7b0c1f2a10\", \"annotations\": {" + annotations + "}}, \"spec\": {\"domain\": {}}}";
    }

    /** Runs the hook as sidecar-shim does: {@code onDefineDomain --vmi JSON --domain XML}. */
    static Run hook(String vmi, String domain) throws Exception {
        Process p = new ProcessBuilder("python3", HOOK.toString(), "--vmi", vmi, "--domain", domain).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        return new Run(p.exitValue(), out, err);
    }

    /** libvirt's verdict on a domain: empty when valid, else what virt-xml-validate said. */
    String validate(String domain) throws Exception {
        Path file = Files.writeString(work.resolve("domain-" + System.nanoTime() + ".xml"), domain);
        Process p;
        try {
            p = new ProcessBuilder("virt-xml-validate", file.toString(), "domain").redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new AssertionError("virt-xml-validate is missing: run scripts/install-deps.sh (libvirt-clients, libxml2-utils)", e);
        }
        String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return p.exitValue() == 0 ? "" : said;
    }

    static Document parse(String xml) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        return f.newDocumentBuilder().parse(new java.io.ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)));
    }

    static List<String> qemuArgs(Document d) {
        NodeList args = d.getElementsByTagNameNS(QEMU_NS, "arg");
        List<String> values = new ArrayList<>();
        for (int i = 0; i < args.getLength(); i++) {
            values.add(((Element) args.item(i)).getAttribute("value"));
        }
        return values;
    }

    static Element timer(Document d, String name) {
        NodeList timers = d.getElementsByTagName("timer");
        for (int i = 0; i < timers.getLength(); i++) {
            Element t = (Element) timers.item(i);
            if (name.equals(t.getAttribute("name"))) {
                return t;
            }
        }
        throw new AssertionError("no " + name + " timer");
    }
}
