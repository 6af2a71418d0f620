package io.mekha.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A VMI's QEMU is told by its cgroup, in every form a node writes it: the kubelet's systemd driver and
 * its cgroupfs driver, cgroup v2 and v1, seen from the agent's own cgroup namespace. The real-QEMU
 * test (KubeVirtAgentTest) runs only the cgroupfs v2 form this machine can make.
 */
@Tag("fast")
class PodIdentityTest {
    static final String UID = "7c1c2b8e-5f0a-4a8e-9d3e-0b6f2a1c9d44";
    static final String CID = "4f1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100aa";
    static final PodIdentity POD = new PodIdentity(UID, "containerd://" + CID);

    @Test
    void theContainerOfThePodIsFoundInEveryFormANodeWritesItsCgroup() {
        // systemd driver, cgroup v2 (the default of current distributions and kubelets)
        assertThat(POD.runs("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + UID.replace('-', '_')
                + ".slice/cri-containerd-" + CID + ".scope\n")).isTrue();
        // the same, seen from the agent's own cgroup namespace
        assertThat(POD.runs("0::/../../kubepods-burstable-pod" + UID.replace('-', '_') + ".slice/cri-containerd-" + CID + ".scope")).isTrue();
        // cgroupfs driver, cgroup v1: one line per hierarchy
        assertThat(POD.runs("12:memory:/kubepods/burstable/pod" + UID + "/" + CID + "\n11:cpu,cpuacct:/kubepods/burstable/pod" + UID + "/" + CID
                + "\n1:name=systemd:/kubepods/burstable/pod" + UID + "/" + CID + "\n")).isTrue();
        // guaranteed QoS: no QoS class in the path
        assertThat(POD.runs("0::/kubepods/pod" + UID + "/" + CID)).isTrue();
    }

    @Test
    void anotherPodOrAnotherContainerOfThePodIsNot() {
        String otherUid = "7c1c2b8e-5f0a-4a8e-9d3e-0b6f2a1c9d45";
        assertThat(POD.runs("0::/kubepods/burstable/pod" + otherUid + "/" + CID)).as("another pod").isFalse();
        assertThat(POD.runs("0::/kubepods/burstable/pod" + UID + "/" + CID.replace('4', '5'))).as("the pod's other container").isFalse();
        assertThat(POD.runs("0::/kubepods/burstable/pod" + UID)).as("the pod, no container").isFalse();
        assertThat(POD.runs("0::/user.slice/user-0.slice/session-1.scope")).as("a process outside Kubernetes").isFalse();
        assertThat(POD.runs("")).as("a process gone").isFalse();
        // the identity in one hierarchy, the container in another: not one cgroup
        assertThat(POD.runs("4:memory:/kubepods/pod" + UID + "\n3:cpu:/other/" + CID)).isFalse();
    }

    @Test
    void onlyAUidAndAContainerIdAreTaken() {
        assertThatThrownBy(() -> new PodIdentity("../../etc", CID)).hasMessageContaining("podUid must be a pod's metadata.uid");
        assertThatThrownBy(() -> new PodIdentity(UID, "docker://xyz")).hasMessageContaining("containerId must be the compute container's ID");
        assertThat(new PodIdentity(UID, "cri-o://" + CID).containerId()).isEqualTo(CID);
    }
}
