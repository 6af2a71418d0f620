package io.mekha.agent;

import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.time.GuestClock;
import io.mekha.model.TimePolicy;
import io.mekha.qmp.QmpException;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * The guests' clocks, for checkpoints and restarts: reading them (a figure, never a must),
 * refusing a time policy that needs a guest agent where there is none (before anything is
 * paused), and applying a restart's time policy.
 */
final class GuestTime {
    private static final Logger LOG = Logger.getLogger(GuestTime.class);

    private final GuestClock clock = new GuestClock(Clock.systemUTC());

    static TimePolicy policy(String id, String text) throws AgentException {
        try {
            return text == null ? TimePolicy.VIRTUAL : TimePolicy.parse(text);
        } catch (IllegalArgumentException e) {
            throw AgentException.invalid("checkpoint " + id + ": " + e.getMessage());
        }
    }

    /** Step and Slew act through the guest agent: refuse them up front where there is none ({@code probe}: ask it too). */
    void requireGuestAgents(String id, TimePolicy policy, List<QemuVm> vms, boolean probe) throws AgentException {
        if (!policy.needsGuestAgent()) {
            return;
        }
        for (QemuVm vm : vms) {
            if (vm.role() == QemuVm.Role.ATTACHED) {
                throw AgentException.unprocessable("checkpoint " + id + ": VM '" + vm.name() + "' runs in KubeVirt, whose virt-launcher holds"
                        + " the guest agent's channel: Mekha cannot set the guest clock there, so the " + policy.displayName()
                        + " time policy is not available on KubeVirt yet; use Virtual. Nothing was paused.", null);
            }
            if (!vm.spec().guestAgent()) {
                throw AgentException.unprocessable("checkpoint " + id + ": VM '" + vm.name() + "' has no guest agent port, and the "
                        + policy.displayName() + " time policy sets the guest clock through qemu-guest-agent; use Virtual, or give"
                        + " the VM 'guestAgent: true' and run qemu-guest-agent in it. Nothing was paused.", null);
            }
            if (probe && !clock.agentAnswers(vm)) {
                throw AgentException.unprocessable("checkpoint " + id + ": the guest agent of VM '" + vm.name() + "' does not answer, and the "
                        + policy.displayName() + " time policy needs it; start qemu-guest-agent in the guest or use Virtual."
                        + " Nothing was paused.", null);
            }
        }
    }

    /** The guest's clock, or null when the VM has no agent or it does not answer. */
    GuestClock.Reading read(QemuVm vm) {
        return read(vm, 1);
    }

    /** The guest clock's reading with the shortest of {@code samples} round trips (null without a guest agent). */
    GuestClock.Reading read(QemuVm vm, int samples) {
        if (!vm.spec().guestAgent()) {
            return null;
        }
        try {
            return clock.read(vm, samples);
        } catch (QmpException e) {
            LOG.debugf("VM '%s': no guest clock reading: %s", vm.name(), e.getMessage());
            return null;
        }
    }

    /**
     * The guest's clock at its cut, read just after it runs again: a paused guest's clock stands still, so the clock
     * at the cut is the clock at its RESUME minus nothing; a reading taken a few milliseconds after the resume says it
     * far better than one taken before the live stage and carried across it (a guest's clock rate under TCG is off by
     * up to a few per cent: tens of milliseconds over a live stage of seconds). Null without an answering guest agent.
     */
    java.time.Instant clockAtCut(QemuVm vm, java.time.Instant resumedAt) {
        if (!vm.spec().guestAgent() || resumedAt == null) {
            return null;
        }
        try {
            GuestClock.Reading reading = clock.read(vm, 3);
            return reading.guest().minus(java.time.Duration.between(resumedAt, reading.host()));
        } catch (QmpException e) {
            LOG.debugf("VM '%s': no guest clock reading after its resume: %s", vm.name(), e.getMessage());
            return null;
        }
    }

    /** Applies a restart's time policy to a VM that runs again; says what it did. */
    String apply(QemuVm vm, TimePolicy policy, Duration slewPeriod) throws QmpException {
        return switch (policy) {
            case VIRTUAL -> "guest clocks continue from the cut";
            case STEP -> {
                clock.step(vm);
                yield "guest realtime stepped to host time";
            }
            case SLEW -> {
                Duration gap = clock.slew(vm, slewPeriod);
                yield "guest realtime slewing forward " + gap.toMillis() + " ms over " + slewPeriod.toMillis() + " ms";
            }
        };
    }
}
