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
}
