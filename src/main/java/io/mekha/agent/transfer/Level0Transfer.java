package io.mekha.agent.transfer;

import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.level0.ShadowCopy;
import io.mekha.agent.qemu.MigrationCapabilities;
import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpEvent;
import io.mekha.qmp.QmpEventQueue;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * The transfer of one running VM's state into its level-0 copy (a shadow QEMU, or a stream the
 * agent holds: {@link Level0Copy}), in the phases a checkpoint session spreads over time
 * ({@link VmTransfer}). One subclass per {@link TransferMode}. QEMU's STOP, RESUME and MIGRATION
 * events are what the figures and the capture wait on: nothing polls faster than it must.
 */
public abstract sealed class Level0Transfer implements VmTransfer permits MtdTransfer, StopAndCopyTransfer, BackgroundSnapshotTransfer {
    private static final Logger LOG = Logger.getLogger(Level0Transfer.class);
    static final long UNCAPPED_BANDWIDTH = MigrationCapabilities.UNCAPPED_BANDWIDTH;
    static final long FINAL_DOWNTIME_MS = MigrationCapabilities.FINAL_DOWNTIME_MS;
    /** A look at the migration between MIGRATION events, in case one was missed. */
    private static final Duration EVENT_WAIT = Duration.ofMillis(50);
    private static final Duration REPLY_TIMEOUT = Duration.ofSeconds(30);

    protected final QemuVm source;
    protected final Level0Copy copy;
    protected final LiveStageBounds bounds;
    /** Where the source migrates to (set once the copy is ready to receive). */
    private String migrationUri;
    protected SwitchoverHold hold;
    private final QmpEventQueue runStateEvents;
    private final QmpEventQueue migrationEvents;
    private final Instant prepared;
    protected Instant liveStarted;
    protected volatile Instant stopIssued;
    protected volatile Instant suspended;
    private volatile Duration freezeAfterStop;
    protected volatile boolean pausedByMekha;
    /** Someone else (its user through libvirt, another monitor) had paused the VM when Mekha's stop came: it stays paused. */
    private volatile boolean pausedByOthers;
    /** Whether QEMU could not have stopped the VM by itself before Mekha's stop (no live stage, or its switchover held). */
    private volatile boolean onlyOthersStopBeforeMekha;
    /** The last STOP or RESUME QEMU reported from before Mekha's stop was sent. */
    private volatile String lastRunStateBeforeStop;
    private QmpClient.Reply stopReply;
    private QmpClient.Reply resumeReply;
    private QmpClient.Prepared preparedStop;
    private QmpClient.Prepared preparedResume;
    private Instant resumeAcknowledged;
    private Instant captured;
    /** When the level-0 copy took the whole state, for a transfer whose copy completes after the resume. */
    protected volatile Instant streamed;
    private volatile Instant stopEvent;
    private volatile Instant resumeEvent;
    private MigrationStatus finalStatus;
    private Path cutDisk;

    protected Level0Transfer(QemuVm source, Level0Copy copy, LiveStageBounds bounds) {
        this.source = source;
        this.copy = copy;
        this.bounds = bounds;
        this.runStateEvents = source.qmp().listen(Set.of("STOP", "RESUME"));
        this.migrationEvents = source.qmp().listen(Set.of("MIGRATION"));
        this.prepared = Instant.now();
    }

    /**
     * Readies the level-0 copy to receive and configures the source for {@code mode}.
     * Refuses, with the reason, a mode this QEMU does not offer.
     */
    public static Level0Transfer prepare(TransferMode mode, QemuVm source, Level0Copy copy, LiveStageBounds bounds)
            throws TransferException {
        Level0Transfer transfer = switch (mode) {
            case MTD -> new MtdTransfer(source, copy, bounds);
            case STOP_AND_COPY -> new StopAndCopyTransfer(source, copy, bounds);
            case BACKGROUND_SNAPSHOT -> new BackgroundSnapshotTransfer(source, copy, bounds);
        };
        try {
            transfer.configure();
            transfer.migrationUri = copy.receive();
            transfer.hold = SwitchoverHold.configure(source, copy, mode == TransferMode.MTD);
        } catch (IOException | TransferException | RuntimeException e) {
            transfer.abort();
            if (e instanceof TransferException t) {
                throw t;
            }
            throw new TransferException("VM '" + source.name() + "': cannot prepare a " + mode.displayName()
                    + " transfer to " + copy.describe() + ": " + e.getMessage(), e);
        }
        return transfer;
    }

    @Override
    public abstract TransferMode mode();

    public QemuVm source() {
        return source;
    }

    /** The shadow QEMU holding level 0, or null when level 0 is a {@link HeldStream}. */
    public QemuVm shadow() {
        return copy instanceof ShadowCopy s ? s.qemu() : null;
    }

    @Override
    public Level0Copy level0() {
        return copy;
    }

    @Override
    public LiveStageBounds bounds() {
        return bounds;
    }

    /** Whether QEMU cannot end the live stage by itself (the switchover is held until the stop). */
    public boolean switchoverHeld() {
        return hold != null && hold.holding();
    }

    /** Sets capabilities and parameters on the source for this mode. */
    protected void configure() throws QmpException, TransferException {
        setCapability("background-snapshot", false, false);
        setCapability("events", true, false); // MIGRATION events: the capture is heard, not polled for
        setParameter("max-bandwidth", bounds.qemuMaxBandwidth(UNCAPPED_BANDWIDTH));
        setParameterIfOffered("avail-switchover-bandwidth", 0);
    }

    @Override
    public void startLive() throws QmpException {
        liveStarted = Instant.now();
    }

    @Override
    public LiveEndingCondition.Reason pollLive() throws QmpException, TransferException {
        return LiveEndingCondition.Reason.DIRTY_SET_STOPPED_SHRINKING;
    }

    @Override
    public void prepareStop() throws QmpException {
        preparedStop = source.qmp().prepare("stop", null);
    }

    /** Sends {@code stop} (the one prepared, if it was); the VM counts as paused by Mekha from now on, whatever comes back. */
    protected void sendStop() throws QmpException {
        onlyOthersStopBeforeMekha = mode() == TransferMode.STOP_AND_COPY || mode() == TransferMode.BACKGROUND_SNAPSHOT || switchoverHeld();
        pausedByMekha = true;
        stopIssued = Instant.now();
        QmpClient.Prepared prepared = preparedStop;
        preparedStop = null;
        stopReply = prepared != null ? prepared.send() : source.qmp().submit("stop", null);
    }

    /**
     * Waits for QEMU's reply to the stop. Then, from the run-state events QEMU sent before it (a monitor delivers events
     * in order, so they are all here): if the VM was already paused by someone else, Mekha did not pause it and will not
     * resume it at Tr, nor on an abort. QEMU cannot have stopped it itself when the switchover was held (or there was no
     * live stage); otherwise a stop before Mekha's is taken for QEMU ending the live stage, as before.
     */
    protected void awaitStop() throws QmpException {
        if (stopReply != null) {
            stopReply.await(REPLY_TIMEOUT);
            stopReply = null;
        }
        suspended = Instant.now();
        freezeAfterStop = freezeAfter(stopIssued, source.lastLeftRunning());
        try {
            while (takeRunStateEvent(Duration.ZERO)) {
                // recorded
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (onlyOthersStopBeforeMekha && "STOP".equals(lastRunStateBeforeStop)) {
            pausedByOthers = true;
            pausedByMekha = false;
            LOG.infof("VM '%s' was paused by someone else (its user, libvirt) before the cut: it is captured paused and left paused",
                    source.name());
        }
    }

    /**
     * How long after {@code sent} the trace says the guest left the running state (the trace's clock is the one
     * {@code sent} was read from); null for no trace, or for a change of state from before the send, which was not this stop.
     */
    static Duration freezeAfter(Instant sent, Instant froze) {
        if (sent == null || froze == null || froze.isBefore(sent.minusMillis(1))) {
            return null;
        }
        return froze.isBefore(sent) ? Duration.ZERO : Duration.between(sent, froze);
    }

    @Override
    public Duration freezeAfterStop() {
        return pausedByOthers ? null : freezeAfterStop;
    }

    @Override
    public boolean pausedByOthersAtCut() {
        return pausedByOthers;
    }

    @Override
    public void awaitCaptured() throws TransferException, InterruptedException {
        awaitMigrated();
        capturedNow();
    }

    /** Marks the cut taken now (a background snapshot's, before its RAM has gone), freezing the VM's disk first. */
    protected void capturedNow() throws TransferException {
        cutDisk = DiskCut.freeze(source);
        captured = Instant.now();
    }

    /** Waits until the migration to the level-0 copy completed and the copy took the whole state. */
    protected void awaitMigrated() throws TransferException, InterruptedException {
        awaitMigrated(null);
    }

    /**
     * {@link #awaitMigrated()}, and with {@code stallLimit} given: fails once the copy moved no byte for that long, or QEMU's
     * monitor gave no answer for that long (a stream stuck on its way to the copy can hold QEMU's main loop).
     */
    protected void awaitMigrated(Duration stallLimit) throws TransferException, InterruptedException {
        long deadline = System.nanoTime() + bounds.completionTimeout().toNanos();
        long lastMoved = System.nanoTime();
        long lastBytes = -1;
        try {
            MigrationStatus status;
            while (true) {
                if (stallLimit == null) {
                    status = status(source);
                } else {
                    Duration left = Duration.ofNanos(Math.max(1, Math.min(deadline - System.nanoTime(), stallLimit.toNanos())));
                    try {
                        status = MigrationStatus.parse(source.qmp().execute("query-migrate", null, left));
                    } catch (QmpException e) {
                        if (!source.isAlive()) {
                            throw e;
                        }
                        throw new TransferException("VM '" + source.name() + "': its copy to " + copy.describe() + " stalled: QEMU's monitor"
                                + " gave no answer within " + left + " (" + e.getMessage() + ")" + copy.lastWords(), e);
                    }
                    if (status.transferredBytes() != lastBytes) {
                        lastBytes = status.transferredBytes();
                        lastMoved = System.nanoTime();
                    } else if (!status.completed() && System.nanoTime() - lastMoved > stallLimit.toNanos()) {
                        throw new TransferException("VM '" + source.name() + "': its copy to " + copy.describe() + " stalled: no byte moved"
                                + " for " + stallLimit + " (" + status.transferredBytes() + " bytes sent)" + copy.lastWords());
                    }
                }
                if (status.completed()) {
                    break;
                }
                if (status.failed()) {
                    throw new TransferException("VM '" + source.name() + "': migration to " + copy.describe() + " " + status.status()
                            + (status.errorDescription() == null ? "" : ": " + status.errorDescription()) + copy.lastWords());
                }
                if (System.nanoTime() > deadline) {
                    throw new TransferException("VM '" + source.name() + "': the transfer to " + copy.describe() + " did not complete within "
                            + bounds.completionTimeout() + " (" + status.remainingBytes() + " bytes left)");
                }
                migrationEvents.poll(EVENT_WAIT); // the next MIGRATION event, or a look anyway
            }
            finalStatus = status;
            String problem = copy.awaitComplete(deadline);
            if (problem != null) {
                throw new TransferException("VM '" + source.name() + "': " + copy.describe() + " could not take the state (completion timeout "
                        + bounds.completionTimeout() + "): " + problem);
            }
            if (hold != null) {
                hold.close();
            }
        } catch (QmpException e) {
            throw new TransferException("VM '" + source.name() + "': lost QEMU while capturing: " + e.getMessage(), e);
        }
    }

    @Override
    public Path cutDisk() {
        return cutDisk;
    }

    @Override
    public void prepareResume() throws QmpException {
        if (pausedByMekha) {
            preparedResume = source.qmp().prepare("cont", null);
        }
    }

    @Override
    public void sendResume() throws QmpException {
        if (pausedByMekha) {
            QmpClient.Prepared prepared = preparedResume;
            preparedResume = null;
            resumeReply = prepared != null ? prepared.send() : source.qmp().submit("cont", null);
        }
    }

    @Override
    public void completeResume() throws QmpException {
        if (resumeReply != null) {
            resumeReply.await(REPLY_TIMEOUT);
            resumeReply = null;
            resumeAcknowledged = Instant.now();
            pausedByMekha = false;
        }
    }

    /**
     * Undoes the transfer: cancels the migration, resumes the source if Mekha paused it, drops
     * the level-0 copy. Best effort and never throws: it runs when something already failed.
     */
    @Override
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
                if (pausedByMekha || (!pausedByOthers && (run.equals("postmigrate") || run.equals("finish-migrate")))) {
                    qmp.execute("cont");
                    pausedByMekha = false;
                }
            }
        } catch (QmpException e) {
            LOG.errorf("VM '%s': could not resume it during abort: %s", source.name(), e.getMessage());
        }
        copy.discard();
        if (hold != null) {
            hold.close();
        }
        runStateEvents.close();
        migrationEvents.close();
    }

    @Override
    public boolean leftPaused() {
        return pausedByMekha;
    }

    @Override
    public TransferFigures figures(String liveEnd, int passes) throws InterruptedException {
        collectRunStateEvents();
        Duration live = liveStarted == null || suspended == null ? Duration.ZERO : Duration.between(liveStarted, suspended);
        // if QEMU stopped the VM itself before Mekha did (a precopy pass found nothing dirty), the pause began then
        Instant pausedFrom = stopIssued == null || stopEvent == null || stopIssued.isBefore(stopEvent) ? stopIssued : stopEvent;
        Duration mekhaPaused = pausedFrom != null && resumeAcknowledged != null ? Duration.between(pausedFrom, resumeAcknowledged) : null;
        Duration guestPaused = stopEvent != null && resumeEvent != null ? Duration.between(stopEvent, resumeEvent) : null;
        return new TransferFigures(mode(), mekhaPaused, guestPaused, finalStatus == null ? null : finalStatus.downtime(),
                finalStatus == null ? 0 : finalStatus.transferredBytes(), live, passes, liveEnd,
                streamed != null ? Duration.between(prepared, streamed) : captured == null ? null : Duration.between(prepared, captured),
                stopEvent, resumeEvent);
    }

    private void collectRunStateEvents() throws InterruptedException {
        while (takeRunStateEvent(resumeEvent == null && stopEvent != null ? Duration.ofMillis(500) : Duration.ZERO)) {
            // recorded
        }
        runStateEvents.close();
        migrationEvents.close();
    }

    /** Records the next STOP or RESUME event, waiting up to {@code wait}; false when none came. */
    private boolean takeRunStateEvent(Duration wait) throws InterruptedException {
        QmpEvent event = runStateEvents.poll(wait);
        if (event == null) {
            return false;
        }
        Instant stop = stopIssued;
        if (stop != null && event.timestamp().isBefore(stop)) {
            lastRunStateBeforeStop = event.name();
        }
        if (event.name().equals("STOP") && stopEvent == null) {
            stopEvent = event.timestamp();
        } else if (event.name().equals("RESUME") && stopEvent != null && resumeEvent == null) {
            resumeEvent = event.timestamp();
        }
        return true;
    }

    /**
     * When QEMU itself stopped the source (it finished the migration early), from its STOP event;
     * null if it has not. Consumes the run-state events: only for a transfer about to be abandoned.
     */
    @Override
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
        source.qmp().execute("migrate", QmpClient.args().put("uri", hold != null ? hold.uri(migrationUri) : migrationUri));
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
        MigrationCapabilities.set(source.qmp(), java.util.Map.of(name, on));
    }
}
