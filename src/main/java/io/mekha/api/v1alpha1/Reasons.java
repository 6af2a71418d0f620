package io.mekha.api.v1alpha1;

/**
 * The machine reasons Mekha's resources carry in their conditions and events, and in its metrics'
 * {@code reason} label: one name per cause, so that code and alert rules compare constants.
 */
public final class Reasons {
    private Reasons() {}

    // ---- a checkpoint or restore under way or done
    public static final String STARTED = "Started";
    public static final String PICKED_UP = "PickedUp";
    public static final String FLUSHING = "Flushing";
    public static final String DURABLE = "Durable";
    public static final String SUCCEEDED = "Succeeded";
    public static final String CAPTURED = "Captured";
    public static final String DISKS_CUT = "DisksCut";
    public static final String RESTORING = "Restoring";
    public static final String RECREATING = "Recreating";
    public static final String RESTORED = "Restored";
    public static final String MEMORY_COPY_USED = "MemoryCopyUsed";
    /** Room for each VM's memory copy was kept on a partner node, before the cut. */
    public static final String PARTNER_ROOM_KEPT = "PartnerRoomKept";
    /** Every VM's memory copy is held by a partner node too. */
    public static final String PARTNER_COPIES_HELD = "PartnerCopiesHeld";
    /** The event on each VMI Mekha paused for a checkpoint, and the one on each VMI it restarted. */
    public static final String MEKHA_CHECKPOINT = "MekhaCheckpoint";
    public static final String MEKHA_RESTORE = "MekhaRestore";
    /** The VMI's Paused condition while Mekha holds it at the cut. */
    public static final String PAUSED_BY_MEKHA = "PausedByMekha";

    // ---- waiting
    public static final String SOURCE_LOCKED = "SourceLocked";
    public static final String CHECKPOINT_NOT_READY = "CheckpointNotReady";

    // ---- refusals: the spec or the cluster must change
    public static final String INVALID_SPEC = "InvalidSpec";
    /** A checkpoint's spec was edited after it started, and what it was taken with was not recorded. */
    public static final String SPEC_CHANGED = "SpecChanged";
    /** A level-0 copy went away with its agent or node after the checkpoint succeeded. */
    public static final String LEVEL0_LOST = "Level0Lost";
    /** One node's memory copy of a VM went away, and another node still holds the VM in memory: L0 still restores it. */
    public static final String LEVEL0_COPY_LOST = "Level0CopyLost";
    /** With placement Both, a VM left in one node's memory by a node's loss was copied again into another node's memory. */
    public static final String LEVEL0_COPY_REMADE = "Level0CopyRemade";
    /** With placement Both, a VM left in one node's memory by a node's loss could not be copied again (no room, no node). */
    public static final String LEVEL0_COPY_NOT_REMADE = "Level0CopyNotRemade";
    public static final String INVALID_SCHEDULE = "InvalidSchedule";
    public static final String NO_VIRTUAL_MACHINES = "NoVirtualMachines";
    public static final String VIRTUAL_MACHINE_NOT_FOUND = "VirtualMachineNotFound";
    public static final String VIRTUAL_MACHINE_IN_OTHER_NAMESPACE = "VirtualMachineInOtherNamespace";
    public static final String VIRTUAL_MACHINE_NOT_RUNNING = "VirtualMachineNotRunning";
    public static final String AGENT_NOT_FOUND = "AgentNotFound";
    public static final String AGENT_NOT_READY = "AgentNotReady";
    public static final String CHECKPOINT_NOT_FOUND = "CheckpointNotFound";
    public static final String CREDENTIALS_NOT_FOUND = "CredentialsNotFound";
    public static final String STORAGE_LOCATION_NOT_FOUND = "StorageLocationNotFound";
    public static final String STORAGE_LOCATION_FORBIDDEN = "StorageLocationForbidden";
    public static final String DISK_NOT_CAPTURED = "DiskNotCaptured";

    // ---- failures
    public static final String CHECKPOINT_FAILED = "CheckpointFailed";
    /** The checkpoint was taken (every VM resumed) but not every level asked for was written. */
    public static final String FLUSH_FAILED = "FlushFailed";
    /** Partner nodes do not lend the memory the copies need: refused before the cut. */
    public static final String PARTNER_NO_ROOM = "PartnerNoRoom";
    /** Copying level 0 to the partner nodes failed after the checkpoint: it is held on the VMs' own nodes only. */
    public static final String PARTNER_COPY_FAILED = "PartnerCopyFailed";
    /** A VM's node failed to write its copy to a level (lost, or its disk); the write was done from its partner node's copy. */
    public static final String WRITTEN_FROM_PARTNER = "WrittenFromPartner";
    public static final String RESTORE_FAILED = "RestoreFailed";
    public static final String FAILURE_DEADLINE_EXCEEDED = "FailureDeadlineExceeded";
    public static final String OPERATOR_RESTARTED = "OperatorRestarted";
    public static final String INTERRUPTED = "Interrupted";
    public static final String INTERNAL_ERROR = "InternalError";

    // ---- schedules
    public static final String SCHEDULED = "Scheduled";
    public static final String SUSPENDED = "Suspended";
    public static final String CHECKPOINT_CREATED = "CheckpointCreated";
    public static final String CHECKPOINT_PRUNED = "CheckpointPruned";
    public static final String CREATE_FAILED = "CreateFailed";
    public static final String DELETE_FAILED = "DeleteFailed";

    // ---- automatic recovery of a schedule's VC
    public static final String VM_FAILED = "VmFailed";
    public static final String NOTHING_TO_RESTORE = "NothingToRestore";
    /** A checkpoint in flight cancelled because its VC is being recovered. */
    public static final String ABORTED_FOR_RECOVERY = "AbortedForRecovery";
    public static final String RECOVERY_STARTED = "RecoveryStarted";
    public static final String RECOVERED = "Recovered";
    public static final String RECOVERY_FAILED = "RecoveryFailed";
    public static final String RECOVERY_STOPPED = "RecoveryStopped";
}
