package io.mekha.local;

import io.mekha.model.TransferFigures;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.RestartReport;
import io.mekha.protocol.VmCheckpointReport;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/** Renders checkpoint and restart results as tables a person reads. */
public final class Reports {
    private Reports() {}

    public static String checkpoint(CheckpointReport report) {
        TextTable vms = new TextTable("vm", "node", "paused", "bytes", "live stage", "passes", "live stage ended", "stopped (vs Ts)",
                "captured (vs Ts)", "resumed (vs Tr)", "guest-host clock at cut");
        for (VmCheckpointReport vm : report.vms()) {
            TransferFigures f = vm.figures();
            vms.row(vm.vm(), vm.node(), TextTable.ms(f.mekhaPaused() != null ? f.mekhaPaused() : f.guestPaused()),
                    TextTable.mib(f.bytesTransferred()), TextTable.seconds(f.liveStage()), f.passes(), f.liveEnd(),
                    relative(vm.stoppedAt(), report.suspendAt()), relative(vm.capturedAt(), report.suspendAt()),
                    relative(vm.resumedAt(), report.resumeAt()), TextTable.ms(vm.guestOffsetAtCut()));
        }
        TextTable vc = new TextTable("virtual cluster", "value")
                .row("checkpoint", report.id())
                .row("live stage ended", report.liveEnd())
                .row("suspend skew (spread of stop instants)", TextTable.ms(report.suspendSkew()))
                .row("resume skew (spread of resume instants)", TextTable.ms(report.resumeSkew()))
                .row("barrier held (no VM resumed before all captured)", report.barrierHeld() ? "yes" : "NO")
                .row("time to checkpoint", TextTable.seconds(report.timeToCheckpoint()));
        return vms.render() + "\n" + vc.render();
    }

    public static String restart(RestartReport report) {
        TextTable vms = new TextTable("vm", "node", "resumed (vs Tr)");
        report.resumedAt().keySet().stream().sorted().forEach(vm ->
                vms.row(vm, report.nodes().get(vm), relative(report.resumedAt().get(vm), report.resumeAt())));
        List<String> names = report.clocks().keySet().stream().sorted().toList();
        String first = names.isEmpty() ? null : names.get(0);
        TextTable clocks = new TextTable("vm", "time policy", "clock jump", "guest-host at cut", "guest-host after",
                "vs " + first + " at cut", "vs " + first + " after", "what the policy did");
        for (String vm : names) {
            RestartReport.VmClock c = report.clocks().get(vm);
            clocks.row(vm, c.timePolicy(), TextTable.ms(c.jump()), TextTable.ms(c.offsetBefore()), TextTable.ms(c.offsetAfter()),
                    TextTable.ms(report.interVmOffsetBefore(vm, first)), TextTable.ms(report.interVmOffsetAfter(vm, first)), c.note());
        }
        TextTable vc = new TextTable("virtual cluster", "value")
                .row("restarted from", report.checkpointId())
                .row("resume skew", TextTable.ms(report.resumeSkew()))
                .row("time to restart", TextTable.seconds(report.timeToRestart()));
        return vms.render() + "\n" + clocks.render() + "\n" + vc.render();
    }

    /** {@code +0.4 ms}: how far an instant lies from a reference instant. */
    static String relative(Instant at, Instant reference) {
        if (at == null || reference == null) {
            return "-";
        }
        Duration d = Duration.between(reference, at);
        return String.format("%+.1f ms", d.toNanos() / 1e6);
    }

    public static String flush(io.mekha.protocol.FlushReport report) {
        TextTable writes = new TextTable("vm", "node", "level", "from", "stored", "stream", "queued", "took", "error");
        for (io.mekha.protocol.FlushReport.Write w : report.writes()) {
            writes.row(w.vm(), w.node(), w.level().name(), w.from() == null ? "-" : w.from().name(), TextTable.mib(w.bytes()),
                    TextTable.mib(w.rawBytes()), TextTable.seconds(w.queued()), TextTable.seconds(w.took()), w.error() != null ? w.error()
                    : w.redoneAfter() != null ? "redone from the partner's copy after " + w.redoneAfter() : "");
        }
        StringBuilder out = new StringBuilder(writes.render());
        report.published().forEach((level, manifest) -> out.append("held whole at ").append(level).append(" (").append(level.description())
                .append("): ").append(manifest.target()).append('\n'));
        report.failures().forEach((level, why) -> out.append("NOT at ").append(level).append(": ").append(why).append('\n'));
        out.append(report.durable() ? "durable after " + TextTable.seconds(report.timeToDurable()) : "not durable: the checkpoint stays in memory (L0)")
                .append(report.level0Released() ? "; shadows released" : "").append('\n');
        return out.toString();
    }
}
