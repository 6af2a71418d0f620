package io.mekha.agent.transfer;

import java.time.Duration;

/**
 * Bounds of the MTD live stage and of the transfer that follows it.
 *
 * @param maxLive the live stage ends when this passes, converged or not
 * @param shrinkFactor the dirty set "stopped shrinking" when a pass's dirty set is at least this
 *     fraction of the previous pass's (0.9: it shrank by less than 10 %)
 * @param smallRemainderBytes a dirty set this small ends the live stage at once: nothing left to gain
 * @param completionTimeout how long the final transfer after the stop may take before the checkpoint is aborted
 * @param bandwidthLimit bytes/s a transfer may use (KubeVirt's bandwidthPerMigration); 0 for uncapped
 */
public record LiveStageBounds(Duration maxLive, double shrinkFactor, long smallRemainderBytes, Duration completionTimeout,
                              long bandwidthLimit) {

    public static LiveStageBounds defaults() {
        return new LiveStageBounds(Duration.ofSeconds(30), 0.9, 1L << 20, Duration.ofSeconds(120), 0);
    }

    public LiveStageBounds {
        if (maxLive.isNegative() || maxLive.isZero()) {
            throw new IllegalArgumentException("live-stage bound must be positive, got " + maxLive);
        }
        if (bandwidthLimit < 0) {
            throw new IllegalArgumentException("bandwidth limit must be >= 0 bytes/s, got " + bandwidthLimit);
        }
        if (shrinkFactor <= 0 || shrinkFactor > 1) {
            throw new IllegalArgumentException("shrinkFactor must be in (0, 1], got " + shrinkFactor);
        }
    }

    public LiveStageBounds withMaxLive(Duration live) {
        return new LiveStageBounds(live, shrinkFactor, smallRemainderBytes, completionTimeout, bandwidthLimit);
    }

    public LiveStageBounds withCompletionTimeout(Duration timeout) {
        return new LiveStageBounds(maxLive, shrinkFactor, smallRemainderBytes, timeout, bandwidthLimit);
    }

    public LiveStageBounds withBandwidthLimit(long bytesPerSecond) {
        return new LiveStageBounds(maxLive, shrinkFactor, smallRemainderBytes, completionTimeout, bytesPerSecond);
    }

    /** The max-bandwidth to give QEMU: the limit, or effectively none. */
    public long qemuMaxBandwidth(long uncapped) {
        return bandwidthLimit > 0 ? bandwidthLimit : uncapped;
    }
}
