package io.mekha.local;

import io.mekha.agent.qemu.Accelerator;
import io.mekha.model.VmSpec;
import java.util.List;
import java.util.Optional;

/** A validated virtual cluster: its name, accelerator and VMs. */
public record VirtualClusterSpec(String name, Accelerator accelerator, List<VmSpec> vms) {
    public VirtualClusterSpec {
        vms = List.copyOf(vms);
    }

    public Optional<VmSpec> vm(String vmName) {
        return vms.stream().filter(v -> v.name().equals(vmName)).findFirst();
    }
}
