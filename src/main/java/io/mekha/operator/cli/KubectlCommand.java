package io.mekha.operator.cli;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.mekha.api.v1alpha1.CheckpointTemplate;
import io.mekha.api.v1alpha1.Conditions;
import io.mekha.api.v1alpha1.Level2Target;
import io.mekha.api.v1alpha1.LevelName;
import io.mekha.api.v1alpha1.Phase;
import io.mekha.api.v1alpha1.RecoveryPolicy;
import io.mekha.api.v1alpha1.RecoverySpec;
import io.mekha.api.v1alpha1.Retention;
import io.mekha.api.v1alpha1.StorageSpec;
import io.mekha.api.v1alpha1.TransferModeName;
import io.mekha.api.v1alpha1.VirtualClusterCheckpoint;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSchedule;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointScheduleSpec;
import io.mekha.api.v1alpha1.VirtualClusterCheckpointSpec;
import io.mekha.api.v1alpha1.VirtualClusterRestore;
import io.mekha.api.v1alpha1.VirtualClusterRestoreSpec;
import io.mekha.api.v1alpha1.VmProgress;
import java.io.PrintWriter;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.function.Function;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code kubectl mekha ...} ({@code scripts/kubectl-mekha} on the PATH runs {@code mekha kubectl ...}): Mekha's
 * resources the way KubeVirt users drive VMs with virtctl. It talks to the API server of the current kubeconfig context
 * (as kubectl does: {@code KUBECONFIG}, {@code -n}, the context's namespace), creates checkpoints, restores and
 * schedules, follows their progress from status with {@code --wait}, and lists and describes checkpoints. Exit codes:
 * 0 done; 1 the resource Failed, the wait timed out or the API server refused; 2 bad input (with what to fix).
 */
@Command(name = "kubectl", mixinStandardHelpOptions = true,
        description = "kubectl mekha: checkpoint, restore, ls, describe and schedule Mekha's resources in the current kubeconfig context.",
        subcommands = {KubectlCommand.Ls.class, KubectlCommand.Describe.class, KubectlCommand.Checkpoint.class, KubectlCommand.Restore.class,
                KubectlCommand.Schedule.class})
public class KubectlCommand {
    static final int FAILED = 1;
    static final int BAD_INPUT = 2;

    @Option(names = {"-n", "--namespace"}, scope = CommandLine.ScopeType.INHERIT, description = "namespace (default: the context's)")
    String namespace;

    @Option(names = {"-o", "--output"}, scope = CommandLine.ScopeType.INHERIT, defaultValue = "table",
            description = "table (default), yaml or json")
    String output;

    @Spec
    CommandSpec spec;

    private final Supplier<KubernetesClient> clients;
    private KubernetesClient client;

    /** Against the current kubeconfig context, as kubectl. */
    public KubectlCommand() {
        this(() -> new KubernetesClientBuilder().build());
    }

    /** Against the API server {@code clients} connects to (tests: the mock server). */
    public KubectlCommand(Supplier<KubernetesClient> clients) {
        this.clients = clients;
    }

    KubernetesClient client() {
        if (client == null) {
            client = clients.get();
        }
        return client;
    }

    String ns() {
        if (namespace != null) {
            return namespace;
        }
        String fromContext = client().getNamespace();
        return fromContext == null ? "default" : fromContext;
    }

    PrintWriter out() {
        return spec.commandLine().getOut();
    }

    PrintWriter err() {
        return spec.commandLine().getErr();
    }

    /** Runs a subcommand; the API server out of reach or refusing: said in one line (exit 1), not as a stack trace. */
    int guard(Callable<Integer> command) {
        try {
            return command.call();
        } catch (KubernetesClientException e) {
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            err().printf("the API server at %s did not answer: %s (check the context: kubectl config current-context)%n",
                    client().getMasterUrl(), e.getCode() > 0 ? e.getCode() + " " + e.getMessage() : root.toString());
            return FAILED;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            err().println("interrupted");
            return FAILED;
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Refuses an output format other than table, yaml and json (exit 2). */
    void checkOutput() {
        if (!List.of("table", "yaml", "json").contains(output)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "unknown output format '" + output + "': use -o yaml or -o json (or no -o)");
        }
    }

    /** Prints {@code o} as yaml or json when asked to; returns whether it did. */
    boolean printedAs(Object o) {
        checkOutput();
        if (output.equals("json")) {
            out().println(Serialization.asJson(o));
        } else if (output.equals("yaml")) {
            out().print(Serialization.asYaml(o));
        } else {
            return false;
        }
        out().flush();
        return true;
    }

    /** Creates {@code resource}; a name taken, a refusal by the API server's schema: said, exit 1 or 2. */
    int create(HasMetadata resource, String kindShown) {
        try {
            HasMetadata created = client().resource(resource).create();
            if (!printedAs(created)) {
                out().printf("%s %s/%s created%n", kindShown, ns(), resource.getMetadata().getName());
                out().flush();
            }
            return 0;
        } catch (KubernetesClientException e) {
            if (e.getCode() == 409) {
                err().printf("%s %s already exists in namespace %s: choose another name (kubectl mekha ls -n %s)%n", kindShown,
                        resource.getMetadata().getName(), ns(), ns());
                return BAD_INPUT;
            }
            if (e.getCode() == 422) {
                err().printf("the API server refused %s %s: %s%n", kindShown, resource.getMetadata().getName(),
                        e.getStatus() == null ? e.getMessage() : e.getStatus().getMessage());
                return BAD_INPUT;
            }
            err().printf("cannot create %s %s: %s%n", kindShown, resource.getMetadata().getName(), e.getMessage());
            return FAILED;
        }
    }

    /**
     * Follows a resource's status until its phase is terminal or {@code timeout} passes, printing each change of
     * {@code progress} as a line; 0 when it Succeeded, else 1 with the reason.
     */
    <T extends HasMetadata> int follow(Supplier<T> read, Function<T, Phase> phase, Function<T, String> progress, Function<T, String> outcome,
                                       Duration timeout) throws InterruptedException {
        Instant deadline = Instant.now().plus(timeout);
        String last = null;
        while (true) {
            T current = read.get();
            if (current == null) {
                err().println("it was deleted while waiting");
                return FAILED;
            }
            String now = progress.apply(current);
            if (now != null && !now.equals(last)) {
                out().printf("%s  %s%n", java.time.LocalTime.now().withNano(0), now);
                out().flush();
                last = now;
            }
            Phase p = phase.apply(current);
            if (p != null && p.terminal()) {
                String said = outcome.apply(current);
                if (p == Phase.Succeeded) {
                    out().println(said);
                    out().flush();
                    return 0;
                }
                err().println(said);
                return FAILED;
            }
            if (Instant.now().isAfter(deadline)) {
                err().printf("still %s after --timeout %s; it goes on: kubectl mekha describe ... -n %s%n", p == null ? "Pending" : p,
                        io.mekha.api.v1alpha1.KubeDuration.format(timeout), ns());
                return FAILED;
            }
            Thread.sleep(250);
        }
    }

    static Duration duration(CommandSpec spec, String option, String text) {
        try {
            return io.mekha.api.v1alpha1.KubeDuration.parse(option, text, null);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage() + " (for example 10m, 90s, 1h)");
        }
    }

    /** A label selector from {@code key=value[,key=value]}. */
    static LabelSelector selector(CommandSpec spec, String text) {
        Map<String, String> labels = new LinkedHashMap<>();
        for (String part : text.split(",")) {
            String[] kv = part.trim().split("=", 2);
            if (kv.length != 2 || kv[0].isBlank()) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--selector '" + text + "': write key=value[,key=value], for example app=hpl");
            }
            labels.put(kv[0].trim(), kv[1].trim());
        }
        return new LabelSelectorBuilder().withMatchLabels(labels).build();
    }

    /** Whether and how long to follow a created checkpoint or restore. */
    static final class Wait {
        @Option(names = "--wait", description = "follow its progress until it Succeeded (exit 0) or Failed (exit 1)")
        boolean await;
        @Option(names = "--timeout", defaultValue = "10m", description = "how long --wait waits (default ${DEFAULT-VALUE})")
        String timeout;
    }

    /** What to checkpoint and how, shared by {@code checkpoint} and {@code schedule}. */
    static final class What {
        @Option(names = {"-l", "--selector"}, description = "VirtualMachines by label, key=value[,key=value]")
        String selector;
        @Option(names = "--vm", description = "a VirtualMachine by name (repeat for each)")
        List<String> vms;
        @Option(names = "--mode", description = "MTD (default), StopAndCopy or BackgroundSnapshot")
        String mode;
        @Option(names = "--levels", split = ",", description = "levels beyond memory: L1, L2 (e.g. --levels L1,L2)")
        List<String> levels;
        @Option(names = "--storage-location", description = "the CheckpointStorageLocation level 2 goes to")
        String location;
        @Option(names = "--level0", description = "where each VM's memory copy lives: Local (its node; default), Partner (another node)"
                + " or Both (survives the loss of a node in memory)")
        String level0;

        VirtualClusterCheckpointSpec spec(CommandSpec command) {
            if ((selector == null) == (vms == null || vms.isEmpty())) {
                throw new CommandLine.ParameterException(command.commandLine(),
                        "say which VMs: --selector key=value (VirtualMachines by label) or --vm NAME (repeat for each), not both");
            }
            VirtualClusterCheckpointSpec s = new VirtualClusterCheckpointSpec();
            if (selector != null) {
                s.selector = KubectlCommand.selector(command, selector);
            } else {
                s.vms = List.copyOf(vms);
            }
            if (mode != null) {
                try {
                    s.transferMode = TransferModeName.valueOf(io.mekha.model.TransferMode.parse(mode).displayName());
                } catch (IllegalArgumentException e) {
                    throw new CommandLine.ParameterException(command.commandLine(), e.getMessage());
                }
            }
            if (levels != null || location != null || level0 != null) {
                s.storage = new StorageSpec();
                if (level0 != null) {
                    s.storage.level0 = new io.mekha.api.v1alpha1.Level0Spec();
                    s.storage.level0.placement = java.util.Arrays.stream(io.mekha.api.v1alpha1.Level0Placement.values())
                            .filter(p -> p.name().equalsIgnoreCase(level0.trim())).findFirst()
                            .orElseThrow(() -> new CommandLine.ParameterException(command.commandLine(), "--level0: unknown placement '"
                                    + level0 + "': use Local, Partner or Both"));
                }
                if (levels != null) {
                    s.storage.levels = new ArrayList<>();
                    for (String l : levels) {
                        try {
                            s.storage.levels.add(LevelName.valueOf(l.trim().toUpperCase(java.util.Locale.ROOT)));
                        } catch (IllegalArgumentException e) {
                            throw new CommandLine.ParameterException(command.commandLine(), "--levels: unknown level '" + l + "': use L1, L2 or L1,L2");
                        }
                    }
                }
                if (location != null) {
                    s.storage.level2 = new Level2Target();
                    s.storage.level2.location = location;
                }
            }
            return s;
        }
    }

    @Command(name = "ls", mixinStandardHelpOptions = true, description = "List checkpoints: levels, sizes, cut time, readiness.")
    static final class Ls implements Callable<Integer> {
        @ParentCommand
        KubectlCommand kubectl;
        @Option(names = {"-A", "--all-namespaces"}, description = "in every namespace")
        boolean all;

        @Override
        public Integer call() {
            return kubectl.guard(this::run);
        }

        private Integer run() {
            kubectl.checkOutput();
            var op = kubectl.client().resources(VirtualClusterCheckpoint.class);
            List<VirtualClusterCheckpoint> items = new ArrayList<>((all ? op.inAnyNamespace().list() : op.inNamespace(kubectl.ns()).list()).getItems());
            items.sort(Comparator.comparing((VirtualClusterCheckpoint c) -> c.getMetadata().getNamespace())
                    .thenComparing(c -> c.getMetadata().getName()));
            if (kubectl.printedAs(Map.of("apiVersion", "v1", "kind", "List", "items", items))) {
                return 0;
            }
            if (items.isEmpty()) {
                kubectl.err().println(all ? "No checkpoints found." : "No checkpoints found in namespace " + kubectl.ns() + ".");
                return 0;
            }
            List<String[]> rows = new ArrayList<>();
            rows.add(all ? new String[] {"NAMESPACE", "NAME", "PHASE", "READY", "LEVELS", "VMS", "SIZE", "MAXPAUSED", "CUT"}
                    : new String[] {"NAME", "PHASE", "READY", "LEVELS", "VMS", "SIZE", "MAXPAUSED", "CUT"});
            for (VirtualClusterCheckpoint c : items) {
                var st = c.getStatus();
                List<String> row = new ArrayList<>();
                if (all) {
                    row.add(c.getMetadata().getNamespace());
                }
                row.add(c.getMetadata().getName());
                row.add(st == null || st.phase == null ? "Pending" : st.phase.name());
                row.add(st != null && Boolean.TRUE.equals(st.readyToUse) ? "true" : "false");
                row.add(st == null || st.levels == null || st.levels.isEmpty() ? "-" : String.join(",", st.levels.stream().map(Enum::name).toList()));
                row.add(st == null || st.vms == null ? "-" : String.valueOf(st.vms.size()));
                row.add(st == null || st.totalBytes == null ? "-" : size(st.totalBytes));
                row.add(st == null || st.maxPausedTime == null ? "-" : st.maxPausedTime);
                row.add(st == null || st.suspendAt == null ? "-" : st.suspendAt);
                rows.add(row.toArray(String[]::new));
            }
            table(kubectl.out(), rows);
            return 0;
        }
    }

    @Command(name = "describe", mixinStandardHelpOptions = true, description = "A checkpoint in detail: per-VM figures, levels, conditions.")
    static final class Describe implements Callable<Integer> {
        @ParentCommand
        KubectlCommand kubectl;
        @Parameters(paramLabel = "CHECKPOINT")
        String name;

        @Override
        public Integer call() {
            return kubectl.guard(this::run);
        }

        private Integer run() {
            kubectl.checkOutput();
            VirtualClusterCheckpoint c = kubectl.client().resources(VirtualClusterCheckpoint.class).inNamespace(kubectl.ns()).withName(name).get();
            if (c == null) {
                kubectl.err().printf("no checkpoint %s in namespace %s (kubectl mekha ls -n %s)%n", name, kubectl.ns(), kubectl.ns());
                return FAILED;
            }
            if (kubectl.printedAs(c)) {
                return 0;
            }
            PrintWriter out = kubectl.out();
            var st = c.getStatus();
            out.printf("Name:         %s%nNamespace:    %s%n", name, kubectl.ns());
            if (st == null) {
                out.println("Phase:        Pending (the operator has not looked at it yet)");
                out.flush();
                return 0;
            }
            out.printf("Phase:        %s%s%n", st.phase == null ? "Pending" : st.phase, st.stage == null ? "" : " (" + st.stage + ")");
            out.printf("Ready to use: %s%n", Boolean.TRUE.equals(st.readyToUse));
            out.printf("Levels:       %s%n", st.levels == null || st.levels.isEmpty() ? "-" : st.levels);
            if (st.level0 != null && st.level0.copies != null && !st.level0.copies.isEmpty()) {
                out.printf("In memory:    %s (%s)%n", String.join(", ", st.level0.copies.stream()
                        .map(k -> k.vm + " on " + k.node + ("Partner".equals(k.role) ? " (partner)" : "")).toList()), st.level0.placement);
            }
            out.printf("Cut (Ts):     %s%nResumed (Tr): %s%n", Objects.toString(st.suspendAt, "-"), Objects.toString(st.resumeAt, "-"));
            out.printf("Skew:         suspend %s, resume %s%n", Objects.toString(st.suspendSkew, "-"), Objects.toString(st.resumeSkew, "-"));
            out.printf("Size:         %s%nDurable after: %s%n", st.totalBytes == null ? "-" : size(st.totalBytes), Objects.toString(st.timeToDurable, "-"));
            if (st.vms != null && !st.vms.isEmpty()) {
                out.println("VMs:");
                List<String[]> rows = new ArrayList<>();
                rows.add(new String[] {"  VM", "NODE", "PHASE", "PAUSED", "SIZE", "SUSPENDED", "RESUMED", "ERROR"});
                for (VmProgress v : st.vms) {
                    rows.add(new String[] {"  " + v.name, Objects.toString(v.node, "-"), Objects.toString(v.phase, "-"), Objects.toString(v.pausedTime, "-"),
                            v.bytes == null ? "-" : size(v.bytes), Objects.toString(v.suspendedAt, "-"), Objects.toString(v.resumedAt, "-"),
                            Objects.toString(v.error, "")});
                }
                table(out, rows);
            }
            if (st.conditions != null && !st.conditions.isEmpty()) {
                out.println("Conditions:");
                st.conditions.forEach(k -> out.printf("  %-12s %-6s %-22s %s%n", k.getType(), k.getStatus(), k.getReason(), k.getMessage()));
            }
            out.flush();
            return 0;
        }
    }

    @Command(name = "checkpoint", mixinStandardHelpOptions = true, description = "Checkpoint a virtual cluster (its VMs by label or by name).")
    static final class Checkpoint implements Callable<Integer> {
        @ParentCommand
        KubectlCommand kubectl;
        @Spec
        CommandSpec spec;
        @Parameters(paramLabel = "NAME", description = "the VirtualClusterCheckpoint to create")
        String name;
        @CommandLine.Mixin
        What what = new What();
        @CommandLine.Mixin
        Wait wait = new Wait();

        @Override
        public Integer call() {
            return kubectl.guard(this::run);
        }

        private Integer run() throws InterruptedException {
            Duration limit = duration(spec, "--timeout", wait.timeout);
            VirtualClusterCheckpoint cp = new VirtualClusterCheckpoint();
            cp.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(kubectl.ns()).build());
            cp.setSpec(what.spec(spec));
            int created = kubectl.create(cp, "checkpoint");
            if (created != 0 || !wait.await) {
                return created;
            }
            String ns = kubectl.ns();
            return kubectl.follow(() -> kubectl.client().resources(VirtualClusterCheckpoint.class).inNamespace(ns).withName(name).get(),
                    c -> c.getStatus() == null ? null : c.getStatus().phase, Checkpoint::progress, c -> {
                        var ready = Conditions.get(c.getStatus().conditions, Conditions.READY);
                        String why = ready == null ? "" : ": " + ready.getReason() + ": " + ready.getMessage();
                        return "checkpoint " + name + " " + c.getStatus().phase + why;
                    }, limit);
        }

        static String progress(VirtualClusterCheckpoint c) {
            var st = c.getStatus();
            if (st == null) {
                return "Pending";
            }
            StringBuilder line = new StringBuilder(st.phase == null ? "Pending" : st.phase.name());
            if (st.stage != null) {
                line.append(", ").append(st.stage);
            }
            if (st.vms != null && !st.vms.isEmpty()) {
                long bytes = st.vms.stream().mapToLong(v -> v.bytes == null ? 0 : v.bytes).sum();
                line.append(", ").append(st.vms.size()).append(" VMs");
                if (bytes > 0) {
                    line.append(", ").append(size(bytes)).append(" captured");
                }
            }
            if (st.levels != null && !st.levels.isEmpty()) {
                line.append(", held at ").append(st.levels.stream().map(Enum::name).toList());
            }
            return line.toString();
        }
    }

    @Command(name = "restore", mixinStandardHelpOptions = true, description = "Restore a virtual cluster from a checkpoint.")
    static final class Restore implements Callable<Integer> {
        @ParentCommand
        KubectlCommand kubectl;
        @Spec
        CommandSpec spec;
        @Parameters(paramLabel = "NAME", description = "the VirtualClusterRestore to create")
        String name;
        @Option(names = "--from", required = true, description = "the checkpoint to restore from")
        String from;
        @Option(names = "--level", description = "the level to try first: L0 (default), L1 or L2")
        String level;
        @CommandLine.Mixin
        Wait wait = new Wait();

        @Override
        public Integer call() {
            return kubectl.guard(this::run);
        }

        private Integer run() throws InterruptedException {
            Duration limit = duration(spec, "--timeout", wait.timeout);
            String ns = kubectl.ns();
            if (kubectl.client().resources(VirtualClusterCheckpoint.class).inNamespace(ns).withName(from).get() == null) {
                kubectl.err().printf("no checkpoint %s in namespace %s to restore from (kubectl mekha ls -n %s)%n", from, ns, ns);
                return BAD_INPUT;
            }
            VirtualClusterRestore r = new VirtualClusterRestore();
            r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(ns).build());
            r.setSpec(new VirtualClusterRestoreSpec());
            r.getSpec().checkpointName = from;
            if (level != null) {
                try {
                    r.getSpec().preferredLevel = LevelName.valueOf(level.toUpperCase(java.util.Locale.ROOT));
                } catch (IllegalArgumentException e) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "--level: unknown level '" + level + "': use L0, L1 or L2");
                }
            }
            int created = kubectl.create(r, "restore");
            if (created != 0 || !wait.await) {
                return created;
            }
            return kubectl.follow(() -> kubectl.client().resources(VirtualClusterRestore.class).inNamespace(ns).withName(name).get(),
                    x -> x.getStatus() == null ? null : x.getStatus().phase, x -> {
                        var st = x.getStatus();
                        if (st == null) {
                            return "Pending";
                        }
                        var progressing = Conditions.get(st.conditions, Conditions.PROGRESSING);
                        return (st.phase == null ? "Pending" : st.phase.name()) + (progressing == null || progressing.getMessage() == null
                                || progressing.getMessage().isEmpty() ? "" : ": " + progressing.getMessage());
                    }, x -> {
                        var ready = Conditions.get(x.getStatus().conditions, Conditions.READY);
                        return "restore " + name + " " + x.getStatus().phase + (x.getStatus().restoredFrom == null ? "" : " from " + x.getStatus().restoredFrom)
                                + (ready == null ? "" : ": " + ready.getMessage());
                    }, limit);
        }
    }

    @Command(name = "schedule", mixinStandardHelpOptions = true, description = "Checkpoint a virtual cluster on a cron schedule.")
    static final class Schedule implements Callable<Integer> {
        @ParentCommand
        KubectlCommand kubectl;
        @Spec
        CommandSpec spec;
        @Parameters(paramLabel = "NAME", description = "the VirtualClusterCheckpointSchedule to create")
        String name;
        @Option(names = "--cron", required = true, description = "five cron fields, runs at least 5m apart, e.g. '0 * * * *'")
        String cron;
        @CommandLine.Mixin
        What what = new What();
        @Option(names = "--keep-last", description = "keep the newest N successful checkpoints")
        Integer keepLast;
        @Option(names = "--recovery", description = "Automatic: restore the VC by itself when a VM fails (default Manual)")
        String recovery;

        @Override
        public Integer call() {
            return kubectl.guard(this::run);
        }

        private Integer run() {
            if (cron.trim().split("\\s+").length != 5) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--cron '" + cron + "': write five fields, minute hour day-of-month month"
                        + " day-of-week, e.g. '0 * * * *'");
            }
            VirtualClusterCheckpointSchedule s = new VirtualClusterCheckpointSchedule();
            s.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(kubectl.ns()).build());
            s.setSpec(new VirtualClusterCheckpointScheduleSpec());
            s.getSpec().schedule = cron.trim();
            s.getSpec().template = new CheckpointTemplate();
            s.getSpec().template.spec = what.spec(spec);
            if (keepLast != null) {
                s.getSpec().retention = new Retention();
                s.getSpec().retention.keepLast = keepLast;
            }
            if (recovery != null) {
                s.getSpec().recovery = new RecoverySpec();
                try {
                    s.getSpec().recovery.policy = RecoveryPolicy.valueOf(recovery);
                } catch (IllegalArgumentException e) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "--recovery '" + recovery + "': use Automatic or Manual");
                }
            }
            return kubectl.create(s, "schedule");
        }
    }

    static String size(long bytes) {
        if (bytes < 1024 * 1024) {
            return (bytes / 1024) + "Ki";
        }
        if (bytes < 1024L * 1024 * 1024) {
            return (bytes / (1024 * 1024)) + "Mi";
        }
        return String.format(java.util.Locale.ROOT, "%.1fGi", bytes / (1024.0 * 1024 * 1024));
    }

    /** kubectl's table: columns padded to their widest cell, three spaces apart. */
    static void table(PrintWriter out, List<String[]> rows) {
        int[] widths = new int[rows.get(0).length];
        rows.forEach(r -> {
            for (int i = 0; i < r.length; i++) {
                widths[i] = Math.max(widths[i], r[i].length());
            }
        });
        for (String[] r : rows) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < r.length; i++) {
                line.append(i == r.length - 1 ? r[i] : String.format("%-" + (widths[i] + 3) + "s", r[i]));
            }
            out.println(line.toString().stripTrailing());
        }
        out.flush();
    }
}
