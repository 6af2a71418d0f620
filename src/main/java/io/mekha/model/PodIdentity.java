package io.mekha.model;

import java.util.List;
import java.util.regex.Pattern;

/**
 * Which process is a VMI's QEMU, as virt-handler knows it: the UID of the VMI's virt-launcher pod and the
 * ID of that pod's {@code compute} container. The kubelet and the container runtime put every process of
 * that container in a cgroup whose path carries both, and no process can move itself into another pod's
 * cgroup; a command line ({@code -name guest=<namespace>_<vmi>}) any tenant can write.
 *
 * @param podUid the launcher pod's {@code metadata.uid}
 * @param containerId the compute container's ID, without the runtime's scheme ({@code containerd://})
 */
public record PodIdentity(String podUid, String containerId) {
    private static final Pattern UID = Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    private static final Pattern CONTAINER = Pattern.compile("[0-9a-f]{12,128}");

    public PodIdentity {
        if (podUid == null || !UID.matcher(podUid).matches()) {
            throw new IllegalArgumentException("podUid must be a pod's metadata.uid (a lowercase UUID), not '" + podUid + "'");
        }
        if (containerId != null && containerId.contains("://")) {
            containerId = containerId.substring(containerId.indexOf("://") + 3);
        }
        if (containerId == null || !CONTAINER.matcher(containerId).matches()) {
            throw new IllegalArgumentException("containerId must be the compute container's ID (hexadecimal, as in its status'"
                    + " containerID after the runtime's scheme), not '" + containerId + "'");
        }
    }

    /**
     * Whether a process whose {@code /proc/<pid>/cgroup} reads {@code cgroupFile} runs in this pod's container: one
     * of its hierarchies places it under a path naming both the pod (cgroupfs writes {@code pod<uid>}, systemd
     * {@code pod<uid with _>}) and the container.
     */
    public boolean runs(String cgroupFile) {
        String systemdUid = podUid.replace('-', '_');
        for (String line : List.of(cgroupFile.split("\n"))) {
            int colon = line.indexOf(':', line.indexOf(':') + 1);
            if (colon < 0) {
                continue;
            }
            String path = line.substring(colon + 1);
            boolean inPod = path.contains("/pod" + podUid) || path.contains("-pod" + systemdUid) || path.contains("/pod" + systemdUid);
            if (inPod && path.contains(containerId)) {
                return true;
            }
        }
        return false;
    }
}
