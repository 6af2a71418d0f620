package io.mekha.agent.kubevirt;

import java.nio.file.Path;

/**
 * The QEMU of one VirtualMachineInstance, running inside its virt-launcher pod on this node.
 *
 * @param pid the QEMU process, as this node's /proc numbers it
 * @param monitor Mekha's QMP socket (added by the hook), as the agent reaches it: through the
 *     process's root ({@code /proc/<pid>/root/...}, which the kernel resolves in the pod's mount
 *     namespace), with the pod's own symbolic links followed inside it ({@link PodPaths})
 * @param commandLine QEMU's arguments: the machine a shadow or restart must reproduce
 * @param processDir {@code /proc/<pid>}: its owner is QEMU's user
 */
public record LauncherQemu(String namespace, String name, long pid, Path monitor, java.util.List<String> commandLine, Path processDir) {

    /** KubeVirt names a VMI's domain {@code <namespace>_<name>}; QEMU gets it as {@code -name guest=<domain>,...}. */
    public String domain() {
        return namespace + "_" + name;
    }

    /** Its {@code /proc/<pid>/cgroup}, read now (empty when it is gone). */
    public String cgroup() {
        try {
            return java.nio.file.Files.readString(processDir.resolve("cgroup"));
        } catch (java.io.IOException e) {
            return "";
        }
    }

    /** Null when it runs in {@code pod}'s compute container, else why it is not the VMI's QEMU. */
    public String notIn(io.mekha.model.PodIdentity pod) {
        if (pod == null) {
            return "no launcher pod is known for VMI " + namespace + "/" + name + " (the operator names it before it acts)";
        }
        String cgroup = cgroup();
        return pod.runs(cgroup) ? null : "QEMU pid " + pid + " says it is VMI " + namespace + "/" + name + " but does not run in its launcher"
                + " pod's compute container (pod " + pod.podUid() + ", container " + pod.containerId() + "; its cgroup: "
                + cgroup.strip().replace('\n', ' ') + ")";
    }
}
