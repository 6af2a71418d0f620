package io.mekha.agent.runtime;

/**
 * A VM's NIC on a VC's L2 segment: QEMU's multicast socket netdev, which needs no root and
 * joins every VM that names the same group.
 *
 * @param multicastGroup host:port of the segment's multicast group, e.g. 230.0.77.1:21012
 * @param mac the NIC's MAC address
 * @param address the guest's static address with prefix, e.g. 10.77.0.1/24 (may be null)
 */
public record NetworkAttachment(String multicastGroup, String mac, String address) {}
