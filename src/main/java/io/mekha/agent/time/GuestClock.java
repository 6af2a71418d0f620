package io.mekha.agent.time;

import io.mekha.agent.qemu.QemuVm;
import io.mekha.qmp.QgaClient;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/** Reads and sets a VM's guest realtime clock through its guest agent. */
public final class GuestClock {
    private static final Duration TIMEOUT = Duration.ofSeconds(3);

    /** A guest clock reading and the host instant it was taken at (the midpoint of the round trip). */
    public record Reading(Instant guest, Instant host) {
        /** guest minus host: how far the guest's clock is ahead of the host's. */
        public Duration offset() {
            return Duration.between(host, guest);
        }

        /** The guest clock at {@code hostInstant}, assuming it runs at the host's rate. */
        public Instant guestAt(Instant hostInstant) {
            return guest.plus(Duration.between(host, hostInstant));
        }
    }

    private final Clock clock;

    public GuestClock(Clock clock) {
        this.clock = clock;
    }

    /** Whether the VM has an agent that answers now (a paused VM's does not). */
    public boolean agentAnswers(QemuVm vm) {
        if (!vm.spec().guestAgent()) {
            return false;
        }
        try (QgaClient qga = QgaClient.connect(vm.paths().guestAgentSocket(), TIMEOUT)) {
            return true;
        } catch (QmpException e) {
            return false;
        }
    }

    public Reading read(QemuVm vm) throws QmpException {
        return read(vm, 1);
    }

    /**
     * The reading of {@code samples} with the shortest round trip: the guest read its clock somewhere within the round
     * trip, so the shortest one places it best.
     */
    public Reading read(QemuVm vm, int samples) throws QmpException {
        try (QgaClient qga = connect(vm)) {
            Reading best = null;
            Duration bestTrip = null;
            for (int i = 0; i < samples; i++) {
                Instant before = clock.instant();
                long ns = qga.execute("guest-get-time", null, TIMEOUT).asLong();
                Instant after = clock.instant();
                Duration trip = Duration.between(before, after);
                if (bestTrip == null || trip.compareTo(bestTrip) < 0) {
                    bestTrip = trip;
                    best = new Reading(Instant.ofEpochSecond(0, ns), before.plus(trip.dividedBy(2)));
                }
            }
            return best;
        }
    }

    /** Step: sets the guest's realtime clock to the host's time now. */
    public void step(QemuVm vm) throws QmpException {
        try (QgaClient qga = connect(vm)) {
            Instant now = clock.instant();
            long ns = now.getEpochSecond() * 1_000_000_000L + now.getNano();
            qga.execute("guest-set-time", QmpClient.args().put("time", ns), TIMEOUT);
        }
    }

    /**
     * Slew: starts the guest's {@code clockslew} program (part of Mekha's test guest), which moves the
     * realtime clock forward by the current gap to the host's, in small forward steps over {@code period}.
     */
    public Duration slew(QemuVm vm, Duration period) throws QmpException {
        Reading now = read(vm);
        Duration gap = now.offset().negated();
        try (QgaClient qga = connect(vm)) {
            var args = QmpClient.args().put("path", "/bin/clockslew");
            args.putArray("arg").add(Long.toString(gap.toMillis())).add(Long.toString(period.toMillis()));
            qga.execute("guest-exec", args, TIMEOUT);
        }
        return gap;
    }

    private static QgaClient connect(QemuVm vm) throws QmpException {
        if (!vm.spec().guestAgent()) {
            throw new QmpException("VM '" + vm.name() + "' has no guest agent port");
        }
        return QgaClient.connect(vm.paths().guestAgentSocket(), TIMEOUT);
    }
}
