package io.mekha.operator.service;

import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;

/**
 * The KubeVirt resources the operator reads ({@code kubevirt.io/v1}), named explicitly: fabric8
 * ships no KubeVirt model and explicit contexts need no API discovery.
 */
public final class KubeVirt {
    public static final ResourceDefinitionContext VIRTUAL_MACHINES = new ResourceDefinitionContext.Builder()
            .withGroup("kubevirt.io").withVersion("v1").withKind("VirtualMachine").withPlural("virtualmachines").withNamespaced(true).build();
    public static final ResourceDefinitionContext INSTANCES = new ResourceDefinitionContext.Builder()
            .withGroup("kubevirt.io").withVersion("v1").withKind("VirtualMachineInstance").withPlural("virtualmachineinstances")
            .withNamespaced(true).build();

    private KubeVirt() {}
}
