package io.mekha.model;

/**
 * A VM's NIC on a VC's L2 segment: a QEMU {@code dgram} netdev talking to the segment's
 * {@link io.mekha.agent.network.SegmentHub} on 127.0.0.1.
 *
 * @param segment the segment's name
 * @param hubPort the UDP port of the segment's hub on 127.0.0.1
 * @param mac the NIC's MAC address
 * @param address the guest's static address with prefix, e.g. 10.77.0.1/24 (may be null)
 */
public record NetworkAttachment(String segment, int hubPort, String mac, String address) {}
