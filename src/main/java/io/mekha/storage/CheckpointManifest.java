package io.mekha.storage;

import io.mekha.model.VmSpec;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * What a stored checkpoint is, as {@code manifest.json} beside its streams: written last, so a
 * checkpoint directory (or prefix) without one is incomplete and never used.
 *
 * @param format {@link #FORMAT}; readers refuse other versions
 * @param level the level this copy of the manifest describes
 * @param target where this copy lives (secret-free)
 * @param suspendAt Ts, the coordinated cut (coordinator's clock)
 * @param levels every level known to hold the checkpoint when this copy was written
 */
public record CheckpointManifest(String format, String virtualCluster, String checkpoint, StorageLevel level, String target,
                                 Instant createdAt, Instant suspendAt, String mode, String timePolicy, List<VmEntry> vms,
                                 List<StorageLevel> levels) {

    public static final String FORMAT = "mekha.io/checkpoint-v1";
    public static final String FILE = "manifest.json";

    /**
     * One VM of the checkpoint.
     *
     * @param node the node whose level-1 directory holds the VM's stream (level 1 is node-local)
     * @param spec the VM's machine description: a restarted QEMU must have the same machine and devices
     * @param accelerator what the VM ran under (TCG or KVM): the saved CPU state fits only the same
     * @param stoppedAt the host time of this VM's cut (coordinator's clock)
     * @param guestClockAtCut the guest's realtime clock at the cut (null without a guest agent)
     * @param disk the VM's disk at the cut: a qcow2 image of everything written above the base image {@code spec.disk()},
     *     which must exist where the VM restarts (null: the VM has no disk)
     */
    public record VmEntry(String name, String node, VmSpec spec, String accelerator, Instant stoppedAt, Instant guestClockAtCut,
                          StoredStream stream, StoredStream disk) {}

    /**
     * How long after Ts the VM's guest stopped at the cut: a restart resumes it that much after its Tr, so that every
     * VM of the checkpoint loses the same time and the guests' clocks keep their distances. Zero where unknown.
     */
    public java.time.Duration stopLate(VmEntry vm) {
        if (suspendAt == null || vm.stoppedAt() == null || vm.stoppedAt().isBefore(suspendAt)) {
            return java.time.Duration.ZERO;
        }
        return java.time.Duration.between(suspendAt, vm.stoppedAt());
    }

    public Optional<VmEntry> vm(String name) {
        return vms.stream().filter(v -> v.name().equals(name)).findFirst();
    }

    public CheckpointManifest at(StorageLevel newLevel, String newTarget, List<StorageLevel> newLevels) {
        return new CheckpointManifest(format, virtualCluster, checkpoint, newLevel, newTarget, createdAt, suspendAt, mode, timePolicy, vms,
                List.copyOf(newLevels));
    }

    /** Throws IllegalArgumentException naming what is wrong with a manifest read from storage. */
    public void validate() {
        if (!FORMAT.equals(format)) {
            throw new IllegalArgumentException("manifest format '" + format + "' is not " + FORMAT);
        }
        if (virtualCluster == null || checkpoint == null || vms == null || vms.isEmpty()) {
            throw new IllegalArgumentException("manifest lacks virtualCluster, checkpoint or vms");
        }
        for (VmEntry vm : vms) {
            if (vm.name() == null || vm.spec() == null || vm.stream() == null || vm.stream().sha256() == null || vm.stream().file() == null) {
                throw new IllegalArgumentException("manifest entry for VM '" + vm.name() + "' lacks its spec or stream checksum");
            }
            if (vm.spec().disk() != null && (vm.disk() == null || vm.disk().sha256() == null)) {
                throw new IllegalArgumentException("manifest entry for VM '" + vm.name() + "' lacks its disk at the cut");
            }
        }
    }
}
