package io.mekha.agent.kubevirt;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Finds the QEMU processes of KubeVirt VMs on this node, the way virt-handler does: through the
 * host's process table (the agent runs with hostPID). A virt-launcher QEMU carries its domain name
 * on its command line ({@code -name guest=<namespace>_<vmi>}); Mekha's monitor socket is reached
 * through {@code /proc/<pid>/root}, which resolves paths in the pod's own mount namespace (and works
 * for KubeVirt's non-root launcher, whose QEMU runs as uid 107: the agent is root).
 */
public final class LauncherQemus {
    /** Where the hook (qemu-hooks/onDefineDomain) has QEMU listen for Mekha, inside the pod. */
    public static final String MONITOR_IN_POD = "/var/run/kubevirt-private/mekha-qmp.sock";

    private final Path procRoot;

    /** @param procRoot the host's /proc (a directory shaped like it in tests) */
    public LauncherQemus(Path procRoot) {
        this.procRoot = procRoot;
    }

    /** Every virt-launcher QEMU on this node. */
    public List<LauncherQemu> all() throws IOException {
        List<LauncherQemu> found = new ArrayList<>();
        try (Stream<Path> entries = Files.list(procRoot)) {
            for (Path dir : entries.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit)).toList()) {
                describe(dir).ifPresent(found::add);
            }
        }
        found.sort((a, b) -> a.domain().compareTo(b.domain()));
        return found;
    }

    /** The QEMU of VMI {@code namespace/name}; the error says what to check when there is none or it has no Mekha monitor. */
    public LauncherQemu find(String namespace, String name) throws IOException, LauncherNotFoundException {
        List<LauncherQemu> all = all();
        LauncherQemu qemu = all.stream().filter(q -> q.namespace().equals(namespace) && q.name().equals(name)).findFirst()
                .orElseThrow(() -> new LauncherNotFoundException("no QEMU of VMI " + namespace + "/" + name + " runs on this node (QEMUs of VMIs here: "
                        + all.stream().map(LauncherQemu::domain).toList() + ")"));
        if (!PodPaths.exists(qemu.monitor())) {
            throw new LauncherNotFoundException("the QEMU of VMI " + namespace + "/" + name + " (pid " + qemu.pid() + ") has no Mekha monitor at "
                    + MONITOR_IN_POD + ": start the VM with Mekha's hook sidecar (annotation hooks.kubevirt.io/hookSidecars, see qemu-hooks/)");
        }
        return qemu;
    }

    private Optional<LauncherQemu> describe(Path dir) {
        List<String> args;
        try {
            byte[] raw = Files.readAllBytes(dir.resolve("cmdline"));
            if (raw.length == 0) {
                return Optional.empty();
            }
            args = Arrays.asList(new String(raw, StandardCharsets.UTF_8).split("\0"));
        } catch (IOException e) {
            return Optional.empty(); // gone, or a kernel thread
        }
        String binary = Path.of(args.get(0)).getFileName().toString();
        if (!binary.startsWith("qemu-system-") && !binary.equals("qemu-kvm")) {
            return Optional.empty();
        }
        String guest = guestName(args);
        int underscore = guest == null ? -1 : guest.indexOf('_');
        if (underscore <= 0) {
            return Optional.empty(); // a QEMU, but not one virt-launcher named
        }
        long pid = Long.parseLong(dir.getFileName().toString());
        Path monitor;
        try {
            monitor = PodPaths.resolve(dir.resolve("root"), MONITOR_IN_POD);
        } catch (IOException e) {
            return Optional.empty(); // the process went away while we looked
        }
        return Optional.of(new LauncherQemu(guest.substring(0, underscore), guest.substring(underscore + 1), pid, monitor, List.copyOf(args), dir));
    }

    /** The value of {@code guest=} in {@code -name guest=NAME,debug-threads=on} (or a bare {@code -name NAME}). */
    static String guestName(List<String> args) {
        for (int i = 0; i + 1 < args.size(); i++) {
            if (args.get(i).equals("-name")) {
                for (String part : args.get(i + 1).split(",")) {
                    if (part.startsWith("guest=")) {
                        return part.substring("guest=".length());
                    }
                    if (!part.contains("=")) {
                        return part;
                    }
                }
            }
        }
        return null;
    }
}
