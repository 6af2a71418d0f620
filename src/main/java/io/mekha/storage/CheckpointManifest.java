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
     * @param stoppedAt the host time of this VM's cut (coordinator's clock): when its stop reached QEMU, which freezes the
     *     guest clock as it takes it (QEMU's STOP event comes after the vCPUs paused, up to tens of ms later)
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

    /** A name that becomes one path component: a letter or digit first (never "." or ".."), no separator. */
    private static final java.util.regex.Pattern NAME = java.util.regex.Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
    /** A Kubernetes node name (a DNS subdomain) or a local node's name. */
    private static final java.util.regex.Pattern NODE = java.util.regex.Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,252}");
    private static final java.util.regex.Pattern SHA256 = java.util.regex.Pattern.compile("[0-9a-f]{64}");

    /**
     * Throws IllegalArgumentException naming what is wrong with a manifest read from storage. A manifest is input: its
     * names become directories and files on every node that loads it, so each is checked before any path is built.
     */
    public void validate() {
        if (!FORMAT.equals(format)) {
            throw new IllegalArgumentException("manifest format '" + format + "' is not " + FORMAT);
        }
        if (virtualCluster == null || checkpoint == null || vms == null || vms.isEmpty()) {
            throw new IllegalArgumentException("manifest lacks virtualCluster, checkpoint or vms");
        }
        requireName("virtualCluster", virtualCluster);
        requireName("checkpoint", checkpoint);
        java.util.Set<String> names = new java.util.HashSet<>();
        for (VmEntry vm : vms) {
            if (vm == null || vm.name() == null || vm.spec() == null || vm.stream() == null || vm.stream().sha256() == null
                    || vm.stream().file() == null) {
                throw new IllegalArgumentException("manifest entry for VM '" + (vm == null ? null : vm.name()) + "' lacks its spec or stream checksum");
            }
            requireName("VM name", vm.name());
            if (!names.add(vm.name())) {
                throw new IllegalArgumentException("manifest lists VM '" + vm.name() + "' twice");
            }
            if (vm.node() != null && !NODE.matcher(vm.node()).matches()) {
                throw new IllegalArgumentException("manifest entry for VM '" + vm.name() + "': node '" + vm.node() + "' is not a node name");
            }
            requireStream(vm.name(), "stream", vm.stream());
            if (vm.spec().disk() != null && (vm.disk() == null || vm.disk().sha256() == null)) {
                throw new IllegalArgumentException("manifest entry for VM '" + vm.name() + "' lacks its disk at the cut");
            }
            if (vm.disk() != null) {
                requireStream(vm.name(), "disk", vm.disk());
            }
        }
    }

    private static void requireName(String field, String value) {
        if (!NAME.matcher(value).matches()) {
            throw new IllegalArgumentException("manifest " + field + " '" + value
                    + "' must be letters, digits, '.', '_' or '-', starting with a letter or digit (at most 63)");
        }
    }

    private static void requireStream(String vm, String what, StoredStream stream) {
        if (stream.file() == null || !NAME.matcher(stream.file()).matches()) {
            throw new IllegalArgumentException("manifest entry for VM '" + vm + "': " + what + " file '" + stream.file()
                    + "' must be a plain file name (letters, digits, '.', '_' or '-', no directory)");
        }
        if (stream.sha256() == null || !SHA256.matcher(stream.sha256()).matches()) {
            throw new IllegalArgumentException("manifest entry for VM '" + vm + "': " + what + " sha256 '" + stream.sha256()
                    + "' is not 64 lowercase hex digits");
        }
        if (stream.bytes() < 0 || stream.rawBytes() < 0) {
            throw new IllegalArgumentException("manifest entry for VM '" + vm + "': " + what + " bytes must not be negative");
        }
        try {
            StoredStream.Compression.parse(stream.compression());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("manifest entry for VM '" + vm + "': " + what + " compression: " + e.getMessage());
        }
    }
}
