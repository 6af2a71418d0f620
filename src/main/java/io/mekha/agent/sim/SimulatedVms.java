package io.mekha.agent.sim;

import io.mekha.agent.TransferFactory;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.agent.transfer.LiveEndingCondition;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.VmTransfer;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * VMs without QEMU, for measuring the coordinator at scale: each node's agent is real (its rooms,
 * watchdogs and HTTP API), its VMs answer on a {@link SimulatedMonitor}, and their transfers end the
 * live stage after {@code liveFor} and take {@code captureDelay} to capture. The stop and resume
 * instants are what the figures report as QEMU's STOP and RESUME, so skews are measured as for QEMU.
 */
public final class SimulatedVms {
    private SimulatedVms() {}

    /** A runtime whose VMs are {@code names}, attached to {@code monitor}. */
    public static VmRuntime runtime(RuntimeConfig config, SimulatedMonitor monitor, List<String> names) throws QmpException {
        List<QemuVm> vms = new java.util.ArrayList<>();
        for (String name : names) {
            QmpClient qmp = QmpClient.connect(monitor.path(), Duration.ofSeconds(10));
            vms.add(QemuVm.attached(VmSpec.named(name).build(), Accelerator.TCG, QemuCommandLine.InstancePaths.in(config.workDir().resolve(name)),
                    List.of("simulated"), ProcessHandle.current(), qmp, null));
        }
        return new VmRuntime() {
            @Override
            public String kind() {
                return "simulated";
            }

            @Override
            public RuntimeConfig config() {
                return config;
            }

            @Override
            public QemuVm start(VmSpec spec) throws VmStartException {
                throw new VmStartException("a simulated node starts no VM");
            }

            @Override
            public List<QemuVm> discover() {
                return vms;
            }

            @Override
            public Level0Copy level0(QemuVm source) throws VmStartException {
                throw new VmStartException("simulated transfers make their own copies");
            }

            @Override
            public QemuVm startIncoming(VmSpec spec, Accelerator accel, Path diskAtCut) throws VmStartException {
                throw new VmStartException("a simulated node restarts nothing");
            }

            @Override
            public io.mekha.agent.api.PartnerKind partnerCopies() {
                return io.mekha.agent.api.PartnerKind.NONE;
            }

            @Override
            public void close() {
                vms.forEach(QemuVm::kill);
            }
        };
    }

    /** Transfers that end their live stage after {@code liveFor} and capture in {@code captureDelay}. */
    public static TransferFactory transfers(Duration liveFor, Duration captureDelay) {
        return (source, mode, bounds) -> new Transfer(mode, bounds, liveFor, captureDelay, null, Duration.ZERO);
    }

    /** Transfers whose guest freezes {@code stopLag} after the stop is sent (a QEMU that takes its stop late: a busy host, a slow monitor). */
    public static TransferFactory lateStop(Duration liveFor, Duration captureDelay, Duration stopLag) {
        return (source, mode, bounds) -> new Transfer(mode, bounds, liveFor, captureDelay, null, stopLag);
    }

    /** Transfers whose capture fails after {@code captureDelay} with {@code failure}: a level-0 copy lost at the cut. */
    public static TransferFactory failingCapture(Duration liveFor, Duration captureDelay, String failure) {
        return (source, mode, bounds) -> new Transfer(mode, bounds, liveFor, captureDelay, failure, Duration.ZERO);
    }

    private static final class Transfer implements VmTransfer {
        private final TransferMode mode;
        private final LiveStageBounds bounds;
        private final Duration liveFor;
        private final Duration captureDelay;
        private final String captureFailure;
        private final Duration stopLag;
        private volatile Instant liveStarted;
        private volatile Instant stopSent;
        private volatile Instant stopped;
        private volatile Instant captured;
        private volatile Instant resumed;
        private volatile boolean aborted;
        private final Level0Copy copy = new Level0Copy() {
            @Override
            public String receive() {
                return "simulated:";
            }

            @Override
            public boolean offersSwitchoverAck() {
                return true;
            }

            @Override
            public String awaitComplete(long deadline) {
                return null;
            }

            @Override
            public boolean held() {
                return captured != null && !aborted;
            }

            @Override
            public boolean lost() {
                return false;
            }

            @Override
            public void discard() {
                aborted = true;
            }

            @Override
            public String describe() {
                return "its simulated copy";
            }
        };

        Transfer(TransferMode mode, LiveStageBounds bounds, Duration liveFor, Duration captureDelay, String captureFailure, Duration stopLag) {
            this.stopLag = stopLag;
            this.mode = mode;
            this.bounds = bounds;
            this.liveFor = liveFor;
            this.captureDelay = captureDelay;
            this.captureFailure = captureFailure;
        }

        @Override
        public TransferMode mode() {
            return mode;
        }

        @Override
        public LiveStageBounds bounds() {
            return bounds;
        }

        @Override
        public Level0Copy level0() {
            return copy;
        }

        @Override
        public void startLive() {
            liveStarted = Instant.now();
        }

        @Override
        public LiveEndingCondition.Reason pollLive() {
            return Duration.between(liveStarted, Instant.now()).compareTo(liveFor) >= 0 ? LiveEndingCondition.Reason.DIRTY_SET_STOPPED_SHRINKING
                    : LiveEndingCondition.Reason.NOT_MET;
        }

        @Override
        public void stop() throws QmpException {
            stopSent = Instant.now();
            if (!stopLag.isZero()) {
                try {
                    Thread.sleep(stopLag.toMillis());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new QmpException("interrupted while stopping");
                }
            }
            stopped = Instant.now();
        }

        @Override
        public void completeSuspend() {
        }

        /** A late stop is a QEMU that froze its guest late, as a real one's run-state trace shows it. */
        @Override
        public Duration freezeAfterStop() {
            return stopSent == null || stopped == null ? null : Duration.between(stopSent, stopped);
        }

        @Override
        public void awaitCaptured() throws InterruptedException, TransferException {
            Thread.sleep(captureDelay.toMillis(), captureDelay.toNanosPart() % 1_000_000);
            if (captureFailure != null) {
                throw new TransferException(captureFailure);
            }
            captured = Instant.now();
        }

        @Override
        public void sendResume() {
            resumed = Instant.now();
        }

        @Override
        public void completeResume() {
        }

        @Override
        public void abort() {
            aborted = true;
        }

        @Override
        public TransferFigures figures(String liveEnd, int passes) {
            Duration paused = stopped != null && resumed != null ? Duration.between(stopped, resumed) : null;
            return new TransferFigures(mode, paused, paused, null, 0, liveStarted == null || stopped == null ? Duration.ZERO
                    : Duration.between(liveStarted, stopped), passes, liveEnd, null, stopped, resumed);
        }

        @Override
        public Instant stoppedByQemuAt() {
            return null;
        }

        @Override
        public Path cutDisk() {
            return null;
        }
    }
}
