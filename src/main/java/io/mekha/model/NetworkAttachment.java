package io.mekha.model;

/**
 * A VM's NIC on a VC's L2 segment: a QEMU {@code dgram} netdev over a Unix datagram socket, talking to the
 * segment's {@link io.mekha.agent.network.SegmentHub} in the hub owner's private directory.
 *
 * @param segment the segment's name
 * @param hubPort the segment's number on this host: it names the hub's sockets, and the hub holds UDP 127.0.0.1:hubPort
 *     so that no two hubs of one number run
 * @param mac the NIC's MAC address
 * @param address the guest's static address with prefix, e.g. 10.77.0.1/24 (may be null)
 */
public record NetworkAttachment(String segment, int hubPort, String mac, String address) {}
