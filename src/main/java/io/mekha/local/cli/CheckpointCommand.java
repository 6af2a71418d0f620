package io.mekha.local.cli;

import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.local.InvalidSpecException;
import io.mekha.local.LocalVcState;
import io.mekha.local.Reports;
import io.mekha.model.TimePolicy;
import io.mekha.model.TransferMode;
import io.mekha.protocol.AgentClient;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.Coordinator;
import io.mekha.protocol.FlushPlan;
import io.mekha.protocol.FlushReport;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import io.mekha.storage.StoredStream;
import java.time.Clock;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mekha checkpoint [VC]}: a coordinated checkpoint of every VM of a local VC into shadows. */
@Command(name = "checkpoint", mixinStandardHelpOptions = true,
        description = "Take a coordinated checkpoint of a local virtual cluster (every VM at one consistent cut).")
public class CheckpointCommand extends CliCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", description = "the VC (default: the only one that is up)")
    String vc;

    @Option(names = "--mode", defaultValue = "MTD", description = "MTD, StopAndCopy or BackgroundSnapshot (default: ${DEFAULT-VALUE})")
    String mode;

    @Option(names = "--id", description = "the checkpoint's id (default: cp-<time>)")
    String id;

    @Option(names = "--time-policy", defaultValue = "Virtual",
            description = "default time policy of restarts from this checkpoint: Virtual, Step or Slew (default: ${DEFAULT-VALUE})")
    String timePolicy;

    @Option(names = "--max-live", defaultValue = "30s", description = "live-stage bound per VM, e.g. 30s (default: ${DEFAULT-VALUE})")
    String maxLive;

    @Option(names = "--flush", split = ",", paramLabel = "LEVEL",
            description = "after the checkpoint, save it to L1 (this node's disk) and/or L2 (--level2), e.g. --flush L1,L2")
    List<String> flush = List.of();

    @Option(names = "--compress", defaultValue = "none", description = "stored streams: none or zstd (default: ${DEFAULT-VALUE})")
    String compress;

    @Option(names = "--keep", description = "after saving, keep only the newest N checkpoints of this VC (deleted everywhere)")
    Integer keep;

    @Option(names = "--release-memory", description = "free the shadows (L0) once the slowest --flush level holds the checkpoint")
    boolean releaseMemory;

    @Mixin
    Level2Options level2;

    @Mixin
    ProgressOption progress;

    @Override
    public Integer call() throws Exception {
        ProgressDisplay.Style style = progress.style();
        List<StorageLevel> levels = new ArrayList<>();
        for (String level : flush) {
            try {
                levels.add(StorageLevel.parse(level));
            } catch (IllegalArgumentException e) {
                throw new InvalidSpecException("--flush: " + e.getMessage());
            }
        }
        StorageTarget shared = level2.target();
        FlushPlan plan = null;
        if (!levels.isEmpty()) {
            try {
                plan = FlushPlan.level1().withLevels(levels, shared).withCompression(StoredStream.Compression.parse(compress).text())
                        .withLevel0(releaseMemory ? FlushPlan.Level0Policy.RELEASE_WHEN_DURABLE : FlushPlan.Level0Policy.KEEP);
            } catch (IllegalArgumentException e) {
                throw new InvalidSpecException(e.getMessage() + (levels.contains(StorageLevel.L2) && shared == null
                        ? " (give --level2 DIR or --level2 s3://BUCKET/PREFIX)" : ""));
            }
        } else if (keep != null || releaseMemory) {
            throw new InvalidSpecException("--keep and --release-memory act on saved checkpoints: add --flush L1 (and/or L2)");
        }
        LocalVcState state = LocalVcState.find(vc);
        AgentClient agent = state.client();
        List<String> vms = agent.vms().stream().map(VmInfo::name).toList();
        String checkpointId = id != null ? id
                : "cp-" + DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC).format(Clock.systemUTC().instant());
        Duration live = Duration.parse("PT" + maxLive.toUpperCase());
        CheckpointOptions options = CheckpointOptions.defaults().withMode(TransferMode.parse(mode)).withLiveBounds(live, live.plusSeconds(15))
                .withTimePolicy(TimePolicy.parse(timePolicy));
        try (Coordinator coordinator = new Coordinator(List.of(agent), Clock.systemUTC())) {
            CheckpointReport report;
            try (ProgressDisplay shown = ProgressDisplay.start(out(), style, "live stage", ProgressSources.liveStage(agent, checkpointId, live))) {
                report = coordinator.checkpoint(checkpointId, vms, options, step -> shown.println("==> " + step));
            }
            state.saveCheckpoint(report);
            out().println();
            out().print(Reports.checkpoint(report));
            if (plan != null) {
                try (CheckpointStorage storage = new CheckpointStorage(List.of(agent), Clock.systemUTC())) {
                    Map<String, Long> sizes = new HashMap<>();
                    report.vms().forEach(v -> sizes.put(v.vm(), v.figures().bytesTransferred()));
                    if (shared != null) {
                        state.saveLevel2(checkpointId, Level2Options.withoutCredentials(shared));
                    }
                    FlushReport flushed;
                    List<String> purposes = levels.stream().map(l -> "flush to " + l).toList();
                    try (ProgressDisplay shown = ProgressDisplay.start(out(), style, "flush to " + String.join(", ", flush.stream()
                            .map(String::toUpperCase).toList()), ProgressSources.transfers(List.of(agent), checkpointId, purposes::contains,
                            vms.size() * levels.size()))) {
                        flushed = storage.flush(CheckpointStorage.draft(state.name(), report, options, Clock.systemUTC().instant()),
                                sizes, plan, step -> shown.println("==> " + step));
                    }
                    out().println();
                    out().print(Reports.flush(flushed));
                    if (keep != null && flushed.durable()) {
                        Map<String, java.time.Instant> known = new HashMap<>();
                        for (CheckpointReport taken : state.checkpoints()) {
                            known.put(taken.id(), taken.suspendAt());
                        }
                        for (String gone : storage.keepNewest(state.name(), keep, shared, known)) {
                            state.forgetCheckpoint(gone);
                            out().println("deleted older checkpoint " + gone + " (keeping the newest " + keep + ")");
                        }
                    }
                    if (!flushed.durable()) {
                        return 1;
                    }
                }
            }
            out().println("\nRestart the VC from it with: mekha restore " + state.name() + " " + checkpointId
                    + (levels.isEmpty() ? "" : " [--from L0|L1|L2]"));
        }
        return 0;
    }
}
