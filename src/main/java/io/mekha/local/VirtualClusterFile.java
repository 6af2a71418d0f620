package io.mekha.local;

import io.mekha.model.MemorySize;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.mekha.agent.level0.HostMemory;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.model.NetworkAttachment;
import io.mekha.model.VmSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Reads a local-mode VC description (YAML) and validates it into a {@link VirtualClusterSpec}.
 * Every error names the file, the field and what to write instead.
 *
 * <pre>
 * name: demo                 # the VC's name
 * accelerator: tcg           # tcg | kvm | auto (auto: KVM, falling back to TCG if the guest does not boot)
 * vms:
 *   - name: vm1
 *     memory: 256Mi
 *     cpus: 1
 *     workload: dirtier -m 64 -d 16 -i 0      # run by the test guest's init (optional)
 *     network: {segment: lan, address: 10.77.0.1/24}
 *     guestAgent: true        # a virtio-serial port for qemu-guest-agent (Step and Slew time policies)
 *     # kernel/initrd default to the project's test guest; disk: a qcow2 base image (each VM writes to an
 *     # overlay of its own, frozen at every checkpoint's cut); paths are relative to this file, '~/' is the home directory
 * </pre>
 */
public final class VirtualClusterFile {
    static final long MIN_MEMORY_MIB = 64;
    static final int MAX_CPUS = 64;
    private static final Pattern NAME = Pattern.compile("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
    private static final Pattern ADDRESS = Pattern.compile("(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})/(\\d{1,2})");
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** The YAML as written, before validation. */
    record RawCluster(String name, String accelerator, List<RawVm> vms) {}

    record RawVm(String name, String memory, Integer cpus, String kernel, String initrd, String append, String workload,
                 String disk, RawNetwork network, @JsonProperty("bootMarker") String bootMarker, Boolean guestAgent) {}

    record RawNetwork(String segment, String address) {}

    private VirtualClusterFile() {}

    public static VirtualClusterSpec load(Path file) throws InvalidSpecException {
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new InvalidSpecException(file + ": no such file");
        } catch (IOException e) {
            throw new InvalidSpecException(file + ": cannot read: " + e.getMessage(), e);
        }
        return parse(text, file.toString(), file.toAbsolutePath().getParent());
    }

    public static VirtualClusterSpec parse(String yaml, String source, Path baseDir) throws InvalidSpecException {
        RawCluster raw;
        try {
            raw = YAML.readValue(yaml, RawCluster.class);
        } catch (UnrecognizedPropertyException e) {
            throw new InvalidSpecException(source + ": unknown field '" + e.getPropertyName() + "' at " + path(e)
                    + "; known fields: " + e.getKnownPropertyIds().stream().map(Object::toString).sorted().collect(Collectors.joining(", ")));
        } catch (JsonProcessingException e) {
            throw new InvalidSpecException(source + ": not a valid VC description: " + e.getOriginalMessage()
                    + (e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ")"));
        }
        if (raw == null) {
            throw new InvalidSpecException(source + ": the file is empty; it needs at least 'name' and 'vms'");
        }
        return new Validator(source, baseDir).validate(raw);
    }

    private static String path(JsonProcessingException e) {
        if (!(e instanceof com.fasterxml.jackson.databind.JsonMappingException m)) {
            return "top level";
        }
        StringBuilder p = new StringBuilder();
        for (var ref : m.getPath()) {
            if (ref.getIndex() >= 0) {
                p.append('[').append(ref.getIndex()).append(']');
            } else if (ref.getFieldName() != null && !ref.getFieldName().equals(e instanceof UnrecognizedPropertyException u ? u.getPropertyName() : null)) {
                p.append(p.length() == 0 ? "" : ".").append(ref.getFieldName());
            }
        }
        return p.length() == 0 ? "top level" : p.toString();
    }

    /** Checks one raw description, collecting a message per problem. */
    private static final class Validator {
        private final String source;
        private final Path baseDir;
        private final List<String> problems = new ArrayList<>();

        Validator(String source, Path baseDir) {
            this.source = source;
            this.baseDir = baseDir;
        }

        VirtualClusterSpec validate(RawCluster raw) throws InvalidSpecException {
            String name = raw.name();
            if (name == null || !NAME.matcher(name).matches()) {
                problems.add("name: '" + name + "' must be a lowercase name of letters, digits and '-' (e.g. demo)");
            }
            Accelerator accel = Accelerator.TCG;
            if (raw.accelerator() != null) {
                try {
                    accel = Accelerator.parse(raw.accelerator());
                } catch (IllegalArgumentException e) {
                    problems.add("accelerator: " + e.getMessage());
                }
            }
            List<VmSpec> vms = new ArrayList<>();
            if (raw.vms() == null || raw.vms().isEmpty()) {
                problems.add("vms: the VC has no VMs; list at least one");
            } else {
                Map<String, Integer> seen = new HashMap<>();
                for (int i = 0; i < raw.vms().size(); i++) {
                    RawVm vm = raw.vms().get(i);
                    if (vm == null) {
                        problems.add("vms[" + i + "]: empty entry");
                        continue;
                    }
                    Integer first = vm.name() == null ? null : seen.putIfAbsent(vm.name(), i);
                    if (first != null) {
                        problems.add("vms[" + i + "]: duplicate VM name '" + vm.name() + "' (also vms[" + first + "]); VM names must be unique");
                    }
                    VmSpec spec = vm(raw.name(), vm, i);
                    if (spec != null) {
                        vms.add(spec);
                    }
                }
            }
            if (!problems.isEmpty()) {
                throw new InvalidSpecException(source + ": " + (problems.size() == 1 ? problems.get(0)
                        : problems.size() + " problems:\n  - " + String.join("\n  - ", problems)));
            }
            return new VirtualClusterSpec(name, accel, vms);
        }

        private VmSpec vm(String clusterName, RawVm vm, int index) {
            String at = "vms[" + index + "]" + (vm.name() == null ? "" : " (" + vm.name() + ")");
            int before = problems.size();
            if (vm.name() == null || !NAME.matcher(vm.name()).matches()) {
                problems.add(at + ".name: '" + vm.name() + "' must be a lowercase name of letters, digits and '-'");
            }
            long memory = 0;
            if (vm.memory() == null) {
                problems.add(at + ".memory: missing; write e.g. 256Mi");
            } else {
                try {
                    memory = MemorySize.parseMiB(vm.memory());
                    long host = HostMemory.totalMiB();
                    if (memory < MIN_MEMORY_MIB) {
                        problems.add(at + ".memory: " + vm.memory() + " is below the " + MIN_MEMORY_MIB + " MiB a guest needs");
                    } else if (memory > host) {
                        problems.add(at + ".memory: " + vm.memory() + " (" + memory + " MiB) is more than this host's "
                                + host + " MiB of RAM; choose a smaller size");
                    }
                } catch (IllegalArgumentException | ArithmeticException e) {
                    problems.add(at + ".memory: " + e.getMessage());
                }
            }
            int cpus = vm.cpus() == null ? 1 : vm.cpus();
            if (cpus < 1 || cpus > MAX_CPUS) {
                problems.add(at + ".cpus: " + cpus + " must be between 1 and " + MAX_CPUS);
            }
            Path kernel = file(at + ".kernel", vm.kernel());
            Path initrd = file(at + ".initrd", vm.initrd());
            Path disk = file(at + ".disk", vm.disk());
            if (kernel == null && disk == null && vm.kernel() == null && vm.disk() == null) {
                GuestImage guest = GuestImage.locate();
                if (!guest.isBuilt()) {
                    problems.add(at + ": no kernel or disk given and the default test guest is not built in " + guest.dir()
                            + "; run src/guest/build-guest.sh or name a kernel");
                } else {
                    kernel = guest.kernel();
                    initrd = vm.initrd() == null ? guest.initrd() : initrd;
                }
            }
            NetworkAttachment network = null;
            if (vm.network() != null) {
                network = network(clusterName, at, vm.network(), index);
            }
            if (problems.size() > before) {
                return null;
            }
            return VmSpec.named(vm.name())
                    .memoryMiB(memory).cpus(cpus).boot(kernel, initrd).append(vm.append()).workload(vm.workload()).disk(disk)
                    .network(network).bootMarker(vm.bootMarker()).guestAgent(vm.guestAgent() != null && vm.guestAgent()).build();
        }

        private Path file(String field, String value) {
            if (value == null) {
                return null;
            }
            String expanded = value.equals("~") || value.startsWith("~/") ? System.getProperty("user.home") + value.substring(1) : value;
            Path p = baseDir == null ? Path.of(expanded) : baseDir.resolve(expanded);
            if (!Files.isRegularFile(p)) {
                problems.add(field + ": file " + p + " does not exist");
                return null;
            }
            if (!Files.isReadable(p)) {
                problems.add(field + ": file " + p + " is not readable");
                return null;
            }
            return p;
        }

        private NetworkAttachment network(String clusterName, String at, RawNetwork net, int index) {
            if (net.segment() == null || !NAME.matcher(net.segment()).matches()) {
                problems.add(at + ".network.segment: '" + net.segment() + "' must be a lowercase name (VMs naming the same segment share an L2 network)");
                return null;
            }
            if (net.address() != null) {
                var m = ADDRESS.matcher(net.address());
                boolean ok = m.matches();
                for (int g = 1; ok && g <= 4; g++) {
                    ok = Integer.parseInt(m.group(g)) <= 255;
                }
                if (!ok || Integer.parseInt(m.group(5)) > 32) {
                    problems.add(at + ".network.address: '" + net.address() + "' must be an IPv4 address with prefix, e.g. 10.77.0.1/24");
                    return null;
                }
            }
            return new NetworkAttachment(net.segment(), hubPort(clusterName, net.segment()), mac(clusterName, index), net.address());
        }
    }

    /**
     * The UDP port of a VC segment's hub on 127.0.0.1: derived from the VC and segment names, so
     * that every VM of a VC (and its shadows) finds the same hub and different VCs do not meet.
     */
    static int hubPort(String cluster, String segment) {
        return 20000 + Math.floorMod((cluster + "/" + segment).hashCode(), 10000); // below the ephemeral range
    }

    static String mac(String cluster, int index) {
        int h = cluster.hashCode();
        return String.format("52:54:%02x:%02x:%02x:%02x", (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff, index & 0xff);
    }
}
