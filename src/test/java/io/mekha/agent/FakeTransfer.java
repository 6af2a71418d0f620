package io.mekha.agent;

import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.transfer.LiveEndingCondition;
import io.mekha.agent.transfer.LiveStageBounds;
import io.mekha.agent.transfer.TransferException;
import io.mekha.agent.transfer.VmTransfer;
import io.mekha.model.TransferFigures;
import io.mekha.model.TransferMode;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A transfer with no QEMU behind it, driven by the test: the live stage ends when the test says, the capture waits
 * until the test lets it complete (or fail), and every call the session makes is recorded in order.
 */
final class FakeTransfer implements VmTransfer {
    final List<String> calls = new CopyOnWriteArrayList<>();
    private final TransferMode mode;
    private final LiveStageBounds bounds;
    private final CountDownLatch captured = new CountDownLatch(1);
    private volatile LiveEndingCondition.Reason liveReason = LiveEndingCondition.Reason.NOT_MET;
    private volatile String captureFailure;
    private volatile boolean aborted;
    private volatile LiveEndingCondition.Reason reported;
    private final Level0Copy copy = new Level0Copy() {
        @Override
        public String receive() {
            return "fake:";
        }

        @Override
        public boolean offersSwitchoverAck() {
            return false;
        }

        @Override
        public String awaitComplete(long deadline) {
            return null;
        }

        @Override
        public boolean held() {
            return !aborted;
        }

        @Override
        public boolean lost() {
            return false;
        }

        @Override
        public void discard() {
            calls.add("discard");
        }

        @Override
        public String describe() {
            return "its fake copy";
        }
    };

    FakeTransfer(TransferMode mode, LiveStageBounds bounds) {
        this.mode = mode;
        this.bounds = bounds;
    }

    /** The live stage meets its local ending condition at the next poll (or QEMU finishes it by itself). */
    void endLiveStage(LiveEndingCondition.Reason reason) {
        liveReason = reason;
    }

    /** The capture completes. */
    void capture() {
        captured.countDown();
    }

    /** The capture fails with {@code why}. */
    void failCapture(String why) {
        captureFailure = why;
        captured.countDown();
    }

    boolean aborted() {
        return aborted;
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
        calls.add("startLive");
    }

    @Override
    public LiveEndingCondition.Reason pollLive() {
        LiveEndingCondition.Reason reason = liveReason;
        if (reason != LiveEndingCondition.Reason.NOT_MET && reason != reported) {
            calls.add("pollLive:" + reason); // once per answer: the session polls on while it waits for the others
            reported = reason;
        }
        return reason;
    }

    @Override
    public void holdLive() {
        calls.add("holdLive");
    }

    @Override
    public void stop() {
        calls.add("stop");
    }

    @Override
    public void completeSuspend() {
        calls.add("completeSuspend");
    }

    @Override
    public void awaitCaptured() throws TransferException, InterruptedException {
        calls.add("awaitCaptured");
        if (!captured.await(30, TimeUnit.SECONDS)) {
            throw new TransferException("the test never let the capture end");
        }
        if (aborted) {
            // what QEMU does when an abort cancels the migration under a capture that waits for it
            throw new TransferException("migration cancelled");
        }
        if (captureFailure != null) {
            throw new TransferException(captureFailure);
        }
    }

    @Override
    public void sendResume() {
        calls.add("sendResume");
    }

    @Override
    public void completeResume() {
        calls.add("completeResume");
    }

    @Override
    public void abort() {
        calls.add("abort");
        aborted = true;
        captured.countDown();
    }

    @Override
    public TransferFigures figures(String liveEnd, int passes) {
        calls.add("figures");
        return new TransferFigures(mode, Duration.ofMillis(1), Duration.ofMillis(1), Duration.ofMillis(1), 4096, Duration.ZERO, passes, liveEnd,
                Duration.ofMillis(2), Instant.now(), Instant.now());
    }

    @Override
    public Instant stoppedByQemuAt() {
        calls.add("stoppedByQemuAt");
        return Instant.now();
    }

    @Override
    public Path cutDisk() {
        return null;
    }
}
