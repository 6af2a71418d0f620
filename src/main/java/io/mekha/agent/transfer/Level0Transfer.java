package io.mekha.agent.transfer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.level0.ShadowCopy;
import io.mekha.agent.qemu.MigrationCapabilities;
import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpEvent;
import io.mekha.qmp.QmpEventQueue;
import io.mekha.qmp.QmpException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * The transfer of one running VM's state into its level-0 copy (a shadow QEMU, or a stream the
 * agent holds: {@link Level0Copy}), in phases that a coordinator can
 * spread over time: {@link #startLive}, {@link #pollLive} until the local ending condition,
 * {@link #suspend} at the chosen instant (the cut), {@link #awaitCaptured}, then
 * {@link #resumeSource} at the chosen instant. {@link #abort} undoes whatever was done.
 * One subclass per {@link TransferMode}.
 */
public abstract sealed class Level0Transfer implements VmTransfer permits MtdTransfer, StopAndCopyTransfer, BackgroundSnapshotTransfer {
    private static final Logger LOG = Logger.getLogger(Level0Transfer.class);
    static final long UNCAPPED_BANDWIDTH = MigrationCapabilities.UNCAPPED_BANDWIDTH;
    static final long FINAL_DOWNTIME_MS = MigrationCapabilities.FINAL_DOWNTIME_MS;
    private static final Duration POLL = Duration.ofMillis(10);

    protected final QemuVm source;
    protected final Level0Copy copy;
    /** Where the source migrates to (set once the copy is ready to receive). */
    private String migrationUri;
    /**
     * Whether MTD holds back the switchover, so that QEMU cannot finish the live stage by itself ({@code MEKHA_HOLD_SWITCHOVER}
     * in the agent's environment: 1 always, 0 never, unset: for held streams only). Into a shadow it goes through a
     * {@link MigrationRelay}; off by default there: while it holds, an idle VM's migration thread re-syncs its dirty
     * bitmap in a tight loop (a host core each), and one run of the time-policy test under it missed its 200 ms
     * tolerance (255 ms) where it never had without; see the notes. A held stream is taken at memory speed, so QEMU
     * would finish an idle guest's live stage over and over (each time a new bulk pass), and the agent holds it itself.
     */
    static final String HOLD_SWITCHOVER = System.getenv("MEKHA_HOLD_SWITCHOVER");

    static boolean holdsSwitchover(Level0Copy copy) {
        return "1".equals(HOLD_SWITCHOVER) || (HOLD_SWITCHOVER == null && copy instanceof HeldStream);
    }

    /** Between source and shadow when the live stage holds back the switchover (MTD on QEMU 8.1+), else null. */
    protected MigrationRelay relay;
    protected final LiveStageBounds bounds;
    private final QmpEventQueue runStateEvents;
    private final Instant prepared;
    protected Instant liveStarted;
    protected Instant stopIssued;
    protected Instant suspended;
    protected boolean pausedByMekha;
    private Instant resumeAcknowledged;
    private Instant captured;
    private Instant stopEvent;
    private Instant resumeEvent;
    private MigrationStatus finalStatus;
    private Path cutDisk;

    protected Level0Transfer(QemuVm source, Level0Copy copy, LiveStageBounds bounds) {
        this.source = source;
        this.copy = copy;
        this.bounds = bounds;
        this.runStateEvents = source.qmp().listen(Set.of("STOP", "RESUME"));
        this.prepared = Instant.now();
    }

    /**
     * Readies the level-0 copy to receive and configures the source for {@code mode}.
     * Refuses, with the reason, a mode this QEMU does not offer.
     */
    public static Level0Transfer prepare(TransferMode mode, QemuVm source, Level0Copy copy, LiveStageBounds bounds)
            throws TransferException {
        if (mode == TransferMode.BACKGROUND_SNAPSHOT && source.disk() != null) {
            throw new TransferException("VM '" + source.name() + "' has a disk: BackgroundSnapshot cannot freeze it at the"
                    + " instant QEMU takes the memory snapshot (QEMU resumes the VM by itself); use MTD or StopAndCopy");
        }
        Level0Transfer transfer = switch (mode) {
            case MTD -> new MtdTransfer(source, copy, bounds);
            case STOP_AND_COPY -> new StopAndCopyTransfer(source, copy, bounds);
            case BACKGROUND_SNAPSHOT -> new BackgroundSnapshotTransfer(source, copy, bounds);
        };
        try {
            transfer.configure();
            transfer.migrationUri = copy.receive();
            transfer.configureSwitchoverHold(mode == TransferMode.MTD && holdsSwitchover(copy));
        } catch (java.io.IOException | TransferException | RuntimeException e) {
            transfer.abort();
            if (e instanceof TransferException t) {
                throw t;
            }
            throw new TransferException("VM '" + source.name() + "': cannot prepare a " + mode.displayName()
                    + " transfer to " + copy.describe() + ": " + e.getMessage(), e);
        }
        return transfer;
    }

    /**
     * With {@code hold} (and where both QEMUs offer {@code switchover-ack}), the migration goes
     * through a {@link MigrationRelay} that withholds the shadow's switchover acknowledgement until
     * the VM is stopped at its cut: QEMU cannot finish the live stage by itself. Otherwise the
     * capabilities are switched off on both sides (a QEMU keeps them from one migration to the next).
     */
    private void configureSwitchoverHold(boolean hold) throws QmpException, java.io.IOException {
        if (!MigrationCapabilities.offers(source.qmp(), "switchover-ack")) {
            return;
        }
        boolean holding = hold && copy.offersSwitchoverAck();
        List<QemuVm> sides = copy instanceof ShadowCopy s && copy.offersSwitchoverAck() ? List.of(source, s.qemu()) : List.of(source);
        for (QemuVm vm : sides) {
            ObjectNode args = QmpClient.args();
            var caps = args.putArray("capabilities");
            caps.add(QmpClient.args().put("capability", "return-path").put("state", holding));
            caps.add(QmpClient.args().put("capability", "switchover-ack").put("state", holding));
            vm.qmp().execute("migrate-set-capabilities", args);
        }
        if (holding && copy instanceof ShadowCopy shadow) {
            relay = new MigrationRelay(shadow.qemu().paths().dir().resolve("relay.sock"), shadow.socket());
        } else if (holding && copy instanceof HeldStream held) {
            held.holdSwitchover();
        }
    }

    /** Lets the held switchover through (the VM is stopped now); a no-op when nothing holds it. */
    protected void releaseSwitchover() throws QmpException {
        if (copy instanceof HeldStream held) {
            try {
                held.releaseSwitchover();
            } catch (java.io.IOException e) {
                throw new QmpException("VM '" + source.name() + "': acknowledging the switchover on the return path failed: " + e.getMessage());
            }
        }
        if (relay != null) {
            try {
                relay.release();
            } catch (java.io.IOException e) {
                throw new QmpException("VM '" + source.name() + "': the migration relay to the shadow broke: " + e.getMessage());
            }
        }
    }

    public abstract TransferMode mode();

    public QemuVm source() {
        return source;
    }

    /** The shadow QEMU holding level 0, or null when level 0 is a {@link HeldStream}. */
    public QemuVm shadow() {
        return copy instanceof ShadowCopy s ? s.qemu() : null;
    }

    public Level0Copy level0() {
        return copy;
    }

    public LiveStageBounds bounds() {
        return bounds;
    }

    /** Sets capabilities and parameters on the source for this mode. */
    protected void configure() throws QmpException, TransferException {
        setCapability("background-snapshot", false, false);
        setParameter("max-bandwidth", bounds.qemuMaxBandwidth(UNCAPPED_BANDWIDTH));
        setParameterIfOffered("avail-switchover-bandwidth", 0);
    }

    /** Begins copying while the VM runs; modes without a live stage do nothing. */
    public void startLive() throws QmpException {
        liveStarted = Instant.now();
    }

    /** One look at the live stage: the reason it may end now, or NOT_MET. */
    public LiveEndingCondition.Reason pollLive() throws QmpException, TransferException {
        return LiveEndingCondition.Reason.DIRTY_SET_STOPPED_SHRINKING;
    }

    /** Freezes the VM's state now: this is the VM's cut. Returns quickly; the copy may go on. */
    public abstract void suspend() throws QmpException;

    /** Waits until the shadow holds the whole state, paused. */
    public void awaitCaptured() throws TransferException, InterruptedException {
        long deadline = System.nanoTime() + bounds.completionTimeout().toNanos();
        try {
            MigrationStatus status;
            while (true) {
                status = status(source);
                if (status.completed()) {
                    break;
                }
                if (status.failed()) {
                    throw new TransferException("VM '" + source.name() + "': migration to " + copy.describe() + " " + status.status()
                            + (status.errorDescription() == null ? "" : ": " + status.errorDescription()));
                }
                if (System.nanoTime() > deadline) {
                    throw new TransferException("VM '" + source.name() + "': the transfer to " + copy.describe() + " did not complete within "
                            + bounds.completionTimeout() + " (" + status.remainingBytes() + " bytes left)");
                }
                Thread.sleep(POLL.toMillis());
            }
            finalStatus = status;
            awaitShadowLoaded(deadline);
            if (relay != null) {
                relay.close();
            }
            freezeDisk();
            captured = Instant.now();
        } catch (QmpException e) {
            throw new TransferException("VM '" + source.name() + "': lost QEMU while capturing: " + e.getMessage(), e);
        }
    }

    private void awaitShadowLoaded(long deadline) throws QmpException, TransferException, InterruptedException {
        String problem = copy.awaitComplete(deadline);
        if (problem != null) {
            throw new TransferException("VM '" + source.name() + "': " + copy.describe() + " could not take the state (completion timeout "
                    + bounds.completionTimeout() + "): " + problem);
        }
    }


    /**
     * Freezes the paused source's disk at the cut: QEMU moves the VM onto a new overlay, and the
     * overlay it wrote until now (the shadow's backing file) is never written again. Runs while the
     * VM is still paused after its memory was captured, so disk and memory are cut at one instant.
     */
    private void freezeDisk() throws TransferException {
        Path current = source.disk();
        if (current == null) {
            return;
        }
        try {
            freezeDiskAt(current);
        } catch (QmpException e) {
            throw new TransferException("VM '" + source.name() + "': cannot freeze its disk " + current + " at the cut: " + e.getMessage(), e);
        }
    }

    private void freezeDiskAt(Path current) throws QmpException {
        java.util.regex.Matcher numbered = java.util.regex.Pattern.compile("disk-(\\d+)\\.qcow2").matcher(current.getFileName().toString());
        int generation = numbered.matches() ? Integer.parseInt(numbered.group(1)) : 0;
        Path next = current.resolveSibling("disk-" + (generation + 1) + ".qcow2");
        source.qmp().execute("blockdev-snapshot-sync", QmpClient.args().put("device", QemuCommandLine.DISK_ID)
                .put("snapshot-file", next.toString()).put("format", "qcow2"));
        source.diskMovedTo(next);
        cutDisk = current;
    }

    /** The VM's disk image as it was at the cut (null without a disk, or before the capture). */
    public Path cutDisk() {
        return cutDisk;
    }

    /** Pauses the source now, remembering that Mekha did (so that abort and resume let it run again). */
    protected void stopSource() throws QmpException {
        stopIssued = Instant.now();
        source.qmp().execute("stop");
        pausedByMekha = true;
        suspended = Instant.now();
    }

    /** Lets the source run again, if Mekha paused it. */
    public void resumeSource() throws QmpException {
        if (pausedByMekha) {
            source.qmp().execute("cont");
            resumeAcknowledged = Instant.now();
            pausedByMekha = false;
        }
    }

    /**
     * Undoes the transfer: cancels the migration, resumes the source if Mekha paused it, drops
     * the level-0 copy. Best effort and never throws: it runs when something already failed.
     */
    public void abort() {
        QmpClient qmp = source.qmp();
        try {
            if (qmp.state() == QmpClient.State.RUNNING && status(source).inProgress()) {
                qmp.execute("migrate_cancel");
            }
        } catch (QmpException e) {
            LOG.warnf("VM '%s': migrate_cancel during abort failed: %s", source.name(), e.getMessage());
        }
        try {
            if (qmp.state() == QmpClient.State.RUNNING) {
                String run = qmp.execute("query-status").path("status").asText();
                if (pausedByMekha || run.equals("postmigrate") || run.equals("finish-migrate")) {
                    qmp.execute("cont");
                    pausedByMekha = false;
                }
            }
        } catch (QmpException e) {
            LOG.errorf("VM '%s': could not resume it during abort: %s", source.name(), e.getMessage());
        }
        copy.discard();
        if (relay != null) {
            relay.close();
        }
        runStateEvents.close();
    }

    /** The figures of a completed transfer; call after {@link #resumeSource}. */
    public TransferFigures figures(String liveEnd, int passes) throws InterruptedException {
        collectRunStateEvents();
        Duration live = liveStarted == null || suspended == null ? Duration.ZERO : Duration.between(liveStarted, suspended);
        // if QEMU stopped the VM itself before Mekha did (a precopy pass found nothing dirty), the pause began then
        Instant pausedFrom = stopIssued == null || stopEvent == null || stopIssued.isBefore(stopEvent) ? stopIssued : stopEvent;
        Duration mekhaPaused = pausedFrom != null && resumeAcknowledged != null ? Duration.between(pausedFrom, resumeAcknowledged) : null;
        Duration guestPaused = stopEvent != null && resumeEvent != null ? Duration.between(stopEvent, resumeEvent) : null;
        return new TransferFigures(mode(), mekhaPaused, guestPaused, finalStatus == null ? null : finalStatus.downtime(),
                finalStatus == null ? 0 : finalStatus.transferredBytes(), live, passes, liveEnd,
                captured == null ? null : Duration.between(prepared, captured), stopEvent, resumeEvent);
    }

    private void collectRunStateEvents() throws InterruptedException {
        QmpEvent event;
        while ((event = runStateEvents.poll(resumeEvent == null && stopEvent != null ? Duration.ofMillis(500) : Duration.ZERO)) != null) {
            if (event.name().equals("STOP") && stopEvent == null) {
                stopEvent = event.timestamp();
            } else if (event.name().equals("RESUME") && stopEvent != null && resumeEvent == null) {
                resumeEvent = event.timestamp();
            }
        }
        runStateEvents.close();
    }

    /**
     * When QEMU itself stopped the source (it finished the migration early), from its STOP event;
     * null if it has not. Consumes the run-state events: only for a transfer about to be abandoned.
     */
    public Instant stoppedByQemuAt() throws InterruptedException {
        QmpEvent event;
        while ((event = runStateEvents.poll(Duration.ZERO)) != null) {
            if (event.name().equals("STOP")) {
                return event.timestamp();
            }
        }
        return null;
    }

    /** The instant the VM was frozen, as QEMU reported it (falls back to Mekha's stop call). */
    public Instant cutInstant() {
        return stopEvent != null ? stopEvent : suspended;
    }

    protected static MigrationStatus status(QemuVm vm) throws QmpException {
        return MigrationStatus.parse(vm.qmp().execute("query-migrate"));
    }

    protected void migrate() throws QmpException {
        source.qmp().execute("migrate", QmpClient.args().put("uri", relay != null ? "unix:" + relay.path() : migrationUri));
    }

    protected void setParameter(String name, long value) throws QmpException {
        source.qmp().execute("migrate-set-parameters", QmpClient.args().put(name, value));
    }

    /** Sets a migration parameter that older QEMUs lack; returns whether it was set. */
    protected boolean setParameterIfOffered(String name, long value) throws QmpException {
        if (!source.qmp().execute("query-migrate-parameters").has(name)) {
            return false;
        }
        setParameter(name, value);
        return true;
    }

    /** Sets a migration capability; with {@code required}, refuses clearly when QEMU lacks it. */
    protected void setCapability(String name, boolean on, boolean required) throws QmpException, TransferException {
        if (!MigrationCapabilities.offers(source.qmp(), name)) {
            if (required) {
                String version = source.qmp().greeting() == null ? "?" : source.qmp().greeting().path("version").path("qemu").toString();
                throw new TransferException("VM '" + source.name() + "': this QEMU (" + version + ") does not offer the '" + name
                        + "' migration capability; choose another transfer mode");
            }
            return;
        }
        ObjectNode capability = QmpClient.args().put("capability", name).put("state", on);
        ObjectNode args = QmpClient.args();
        args.putArray("capabilities").add(capability);
        source.qmp().execute("migrate-set-capabilities", args);
    }
}
