package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.PartnerStreamHeader;
import io.mekha.agent.api.AgentDtos.ReplicateRequest;
import io.mekha.agent.level0.HeldState;
import io.mekha.agent.qemu.MigrationCapabilities;
import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.storage.TransferMeter;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.time.Duration;

/**
 * The source side of level 0 on a partner node: this node's copy of a complete checkpoint's VM sent to the node that
 * keeps room for it. A shadow QEMU migrates once into the partner's waiting QEMU over QEMU's TLS with the copy's key;
 * a held stream is read again and handed to the partner's agent over the agents' mutual TLS ({@link PartnerStreamSender}).
 */
final class Level0Replication {
    private static final Duration SEND_TIMEOUT = Duration.ofMinutes(10);

    private final String node;
    private final PartnerStreamSender streams;
    private final Transfers transfers;

    Level0Replication(String node, PartnerStreamSender streams, Transfers transfers) {
        this.node = node;
        this.streams = streams;
        this.transfers = transfers;
    }

    /** Sends {@code vm}'s copy as the request says; returns once the partner holds it whole. */
    void replicate(String id, CheckpointSession session, SessionVm vm, ReplicateRequest request) throws AgentException, InterruptedException {
        HeldState held = vm.heldState();
        if (held != null) {
            send(id, vm, held, new PartnerStreamHeader(vm.name(), node, vm.spec(), vm.accelerator().name(),
                    vm.frozenAt, vm.guestClockAtCut, session.timePolicy.name(), vm.stopLate, held.bytes(), 0), request);
            return;
        }
        ApiChecks.migrationUri("the partner's uri", request.uri());
        shadow(id, vm, request);
    }

    /**
     * Hands on a copy this node holds for another node's VM (a held stream) to a further node, with what a restart from it
     * needs as it came here; returns once that node holds it whole. A shadow partner is not handed on: QEMU streams a
     * paused VM out only once.
     */
    void forward(String id, PartnerCopies.PartnerCopy copy, ReplicateRequest request) throws AgentException {
        HeldState held = copy.heldState();
        PartnerCopies.Origin origin = copy.origin;
        if (held == null || origin == null || !copy.holds()) {
            throw AgentException.conflict("node " + node + " holds no stream of VM '" + request.vm() + "' of checkpoint " + id
                    + " to hand on (a shadow copy streams out only once)");
        }
        send(id, copy, held, new PartnerStreamHeader(copy.vm, node, origin.spec(), origin.accelerator().name(), origin.stoppedAt(),
                origin.guestClockAtCut(), origin.timePolicy(), origin.stopLate(), held.bytes(), 0), request);
    }

    /** Hands {@code held} (the copy {@code holding} keeps) to the partner's agent the request names, followed as a transfer. */
    private void send(String id, Level0Holding holding, HeldState held, PartnerStreamHeader header, ReplicateRequest request) throws AgentException {
        java.net.URI partner = ApiChecks.partnerListener("the partner's uri", request.uri());
        TransferMeter meter = transfers.open(id, header.vm(), "copy to node " + request.partnerNode(), 1);
        try {
            synchronized (holding.streamLock()) {
                streams.send(id, held, header, partner, request.partnerNode(), request.key(), meter);
            }
            meter.finished(null);
        } catch (AgentException e) {
            meter.finished(e.getMessage());
            throw e;
        }
    }

    /** Streams this node's shadow of a complete checkpoint's VM to a partner's waiting QEMU; returns once QEMU reports it sent. */
    private void shadow(String id, SessionVm vm, ReplicateRequest request) throws AgentException, InterruptedException {
        QemuVm shadow = vm.shadow();
        if (shadow == null || !shadow.isAlive() || shadow.role() != QemuVm.Role.SHADOW) {
            throw AgentException.conflict("the shadow of VM '" + request.vm() + "' on node " + node + " is gone");
        }
        synchronized (vm.streamLock()) {
            if (vm.streamedTo() != null) {
                throw AgentException.conflict("the shadow of VM '" + request.vm() + "' was already streamed to " + vm.streamedTo()
                        + "; QEMU streams a paused VM out only once");
            }
            try {
                MigrationCapabilities.plainOutgoingMigration(shadow);
                io.mekha.agent.qemu.MigrationTls.client(shadow, request.key());
                shadow.qmp().execute("migrate", QmpClient.args().put("uri", request.uri()));
                long deadline = System.nanoTime() + SEND_TIMEOUT.toNanos();
                while (true) {
                    MigrationStatus status = MigrationStatus.parse(shadow.qmp().execute("query-migrate", null, Duration.ofMinutes(2)));
                    if (status.completed()) {
                        break;
                    }
                    if (status.failed() || System.nanoTime() > deadline) {
                        throw AgentException.conflict("streaming the shadow of VM '" + request.vm() + "' to " + request.uri() + " "
                                + (status.failed() ? status.status() + ": " + status.errorDescription() : "did not finish in 10 minutes"));
                    }
                    Thread.sleep(20);
                }
                vm.streamedTo("a partner (" + request.uri() + ")");
                io.mekha.agent.qemu.MigrationTls.forget(shadow);
            } catch (QmpException e) {
                throw AgentException.failed("streaming the shadow of VM '" + request.vm() + "' to its partner failed: " + e.getMessage(), e);
            } catch (java.io.IOException e) {
                throw AgentException.failed("cannot write the key of the copy of VM '" + request.vm() + "': " + e.getMessage(), e);
            }
        }
    }
}
