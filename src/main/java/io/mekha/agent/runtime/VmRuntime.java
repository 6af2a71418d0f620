package io.mekha.agent.runtime;

import io.mekha.agent.api.PartnerKind;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.model.VmSpec;
import java.nio.file.Path;
import java.util.List;

/**
 * Where an agent's VMs come from and where their checkpoints go in memory. The local runtime
 * starts QEMUs itself and keeps level 0 as shadow QEMUs; the KubeVirt runtime finds the QEMUs of
 * the VirtualMachineInstances on its node (inside their virt-launcher pods) and keeps level 0 as
 * their migration streams. The agent's protocol (prepare, live stage, suspend at Ts, resume at Tr,
 * flush, restart) is the same over both.
 */
public interface VmRuntime extends AutoCloseable {

    /** "local" or "kubevirt", for messages and {@code /healthz}. */
    String kind();

    RuntimeConfig config();

    /** Starts a VM the agent owns and waits until its guest booted; a runtime whose VMs others start refuses. */
    QemuVm start(VmSpec spec) throws VmStartException, InterruptedException;

    /**
     * The VMs on this node that someone else started and the agent may drive, connected (each
     * {@link QemuVm.Role#ATTACHED}); the same instance while it lives. None for the local runtime.
     */
    List<QemuVm> discover();

    /** Where a checkpoint of {@code source} keeps its level-0 copy; checks that the node can hold it. */
    Level0Copy level0(QemuVm source) throws VmStartException, InterruptedException;

    /**
     * Null when the level-0 copies of every VM in {@code sources} fit on this node together (memory, the agent's
     * cgroup limit, the level-0 filesystem), else what is missing: checked before a checkpoint pauses anything.
     */
    /**
     * The launcher pods of VMs this runtime finds by itself (KubeVirt), by VM name: from then on only the QEMU in
     * that pod's container is that VM. The local runtime starts its VMs itself and ignores this.
     */
    default void expectPods(java.util.Map<String, io.mekha.model.PodIdentity> pods) {}

    /** Null when every one of {@code vms} is the VM it says it is, else why not (the local runtime: always null). */
    default String identityProblem(List<QemuVm> vms) {
        return null;
    }

    default String level0Shortfall(List<QemuVm> sources) {
        return level0Shortfall(sources, 0);
    }

    /**
     * As {@link #level0Shortfall(List)}, with {@code promisedMiB} already promised to other nodes' copies that have not
     * arrived yet (they take memory the host does not show as used now).
     */
    default String level0Shortfall(List<QemuVm> sources, long promisedMiB) {
        return null;
    }

    /** Memory one level-0 copy of a VM with {@code guestMiB} of RAM takes here: a shadow's guest RAM and QEMU's own. */
    default long level0NeedMiB(long guestMiB) {
        return guestMiB + io.mekha.agent.level0.MemoryBound.QEMU_OVERHEAD_MIB;
    }

    /**
     * Lets go of level-0 files an earlier agent of this node left (an agent container restarted in its pod keeps the
     * pod's memory-backed volume, but not the sessions and partner copies that gave those files a meaning): called once,
     * when the agent starts. Returns the bytes freed.
     */
    default long forgetEarlierLevel0() {
        return 0;
    }

    /** Where held streams live in memory (a tmpfs in the DaemonSet); other nodes' streams go under it too. */
    default Path level0Dir() {
        return config().workDir().resolve("level0");
    }

    /**
     * A QEMU for {@code spec} that waits, paused, for a saved state (a restart from a stored or held
     * stream): started here ({@code -incoming defer}), or, on KubeVirt, the restored VMI's QEMU the
     * hook started waiting. {@code accel} is what the state was saved under.
     */
    QemuVm startIncoming(VmSpec spec, Accelerator accel, Path diskAtCut) throws VmStartException, InterruptedException;

    /**
     * Whether a VM's base disk image is a file on this node that a restart needs (local); on KubeVirt it is the
     * containerDisk inside the VM's pod, which KubeVirt provides.
     */
    default boolean baseImagesOnNode() {
        return true;
    }

    /** What this node holds when it is another node's VM's level-0 partner (NONE: it holds none). */
    PartnerKind partnerCopies();

    @Override
    void close();
}
