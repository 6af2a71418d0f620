package io.mekha.agent.transfer;

import io.mekha.agent.level0.HeldStream;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.level0.ShadowCopy;
import io.mekha.agent.qemu.MigrationCapabilities;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.qmp.QmpException;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Keeps QEMU from ending a live stage by itself: with {@code return-path} and {@code switchover-ack}
 * on the source, QEMU may not switch a running VM over before the destination acknowledges, and the
 * acknowledgement is withheld until the VM is stopped at its cut: by the agent itself for a stream it
 * holds, by a {@link MigrationRelay} between the VM's QEMU and its shadow's. On by default wherever the
 * QEMUs offer it (8.1+); {@code MEKHA_HOLD_SWITCHOVER=0} in the agent's environment turns it off.
 * Without it, stock QEMU finishes a precopy whenever a pass ends with nothing dirty, pausing the VM
 * long before Ts: a VM that barely dirties memory (an MPI rank waiting, a chatty network job) is
 * paused early, loses guest time the others do not, and the cut drifts.
 */
final class SwitchoverHold implements AutoCloseable {
    private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(SwitchoverHold.class);
    static final boolean ENABLED = !"0".equals(System.getenv("MEKHA_HOLD_SWITCHOVER"));

    private final QemuVm source;
    private final Level0Copy copy;
    private final MigrationRelay relay;
    private final boolean holding;

    private SwitchoverHold(QemuVm source, Level0Copy copy, MigrationRelay relay, boolean holding) {
        this.source = source;
        this.copy = copy;
        this.relay = relay;
        this.holding = holding;
    }

    /**
     * Sets the capabilities on the source (and a shadow) for a live stage: held when {@code wanted} and both sides can,
     * else plainly off (a QEMU keeps capabilities from one migration to the next).
     */
    static SwitchoverHold configure(QemuVm source, Level0Copy copy, boolean wanted) throws QmpException, IOException {
        if (!MigrationCapabilities.offers(source.qmp(), "switchover-ack")) {
            return new SwitchoverHold(source, copy, null, false);
        }
        boolean holding = wanted && ENABLED && copy.offersSwitchoverAck();
        List<QemuVm> sides = copy instanceof ShadowCopy s && copy.offersSwitchoverAck() ? List.of(source, s.qemu()) : List.of(source);
        Map<String, Boolean> caps = new LinkedHashMap<>();
        caps.put("return-path", holding);
        caps.put("switchover-ack", holding);
        for (QemuVm vm : sides) {
            MigrationCapabilities.set(vm.qmp(), caps);
        }
        MigrationRelay relay = null;
        if (holding && copy instanceof ShadowCopy shadow) {
            relay = new MigrationRelay(shadow.qemu().paths().dir().resolve("relay.sock"), shadow.socket());
        } else if (holding && copy instanceof HeldStream held) {
            held.holdSwitchover();
        }
        return new SwitchoverHold(source, copy, relay, holding);
    }

    /** Whether QEMU cannot switch over by itself while the VM runs. */
    boolean holding() {
        return holding;
    }

    /** Where the source migrates to: the relay when there is one, else the copy's own URI. */
    String uri(String copyUri) {
        return relay != null ? "unix:" + relay.path() : copyUri;
    }

    /**
     * Lets the switchover through (the VM is stopped now); a no-op when nothing holds it. A stopped VM may switch over
     * without the acknowledgement (QEMU waits for it only while the VM runs), so the migration may already be over and its
     * socket closed: that is no failure, and whether the copy took the whole state is what the capture checks.
     */
    void release() {
        try {
            if (copy instanceof HeldStream held) {
                held.releaseSwitchover();
            }
            if (relay != null) {
                relay.release();
            }
        } catch (IOException e) {
            LOG.debugf("VM '%s': the switchover went without its acknowledgement (%s)", source.name(), e);
        }
    }

    @Override
    public void close() {
        if (relay != null) {
            relay.close();
        }
    }
}
