package io.mekha.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.mekha.agent.api.AgentDtos.ExecRequest;
import io.mekha.agent.api.AgentDtos.ExecResult;
import io.mekha.local.GuestImage;
import io.mekha.model.TransferMode;
import io.mekha.model.VmSpec;
import io.mekha.storage.StorageLevel;
import io.mekha.storage.StorageTarget;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.SingleAgent;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Disks are part of a checkpoint: frozen at the cut, reverted on restart. A VM with a qcow2 disk
 * writes blocks before and after the cut (through the guest agent); every restart, from memory and
 * from disk storage, sees exactly what was written before the cut, in every transfer mode (a background snapshot's disk
 * too: it is frozen while the VM is stopped at the cut, before its RAM streams on).
 */
@Tag("qemu")
@ExtendWith(NoQemuLeftBehind.class)
class DiskCheckpointTest {
    @TempDir
    Path work;

    @Test
    void aRestartSeesTheDiskAsItWasAtTheCutFromMemoryAndFromStorage() throws Exception {
        Path base = work.resolve("base.qcow2");
        assertThat(new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", base.toString(), "16M").inheritIO().start().waitFor()).isZero();
        GuestImage guest = GuestImage.locate().requireBuilt();
        VmSpec spec = VmSpec.named("vm1")
                .boot(guest.kernel(), guest.initrd()).workload("dirtier -m 8 -d 1 -i 200").disk(base).guestAgent(true).build();
        StorageTarget shared = new StorageTarget.Filesystem(work.resolve("shared"));
        try (SingleAgent node = new SingleAgent(work.resolve("n1"));
             CheckpointStorage storage = new CheckpointStorage(List.of(node.client), Clock.systemUTC())) {
            node.client.startVm(spec);
            write(node, "BEFORE-CUT", 0);
            for (TransferMode mode : List.of(TransferMode.MTD, TransferMode.STOP_AND_COPY, TransferMode.BACKGROUND_SNAPSHOT)) {
                String id = "cp-" + mode.name().toLowerCase();
                CheckpointOptions options = CheckpointOptions.defaults().withMode(mode);
                CheckpointReport report = node.coordinator.checkpoint(id, List.of("vm1"), options, System.out::println);
                write(node, "AFTER-CUT", 8);
                FlushReport flush = storage.flush(CheckpointStorage.draft("disk", report, options, Instant.now()), Map.of(),
                        FlushPlan.level1().withLevels(List.of(StorageLevel.L1, StorageLevel.L2), shared), System.out::println);
                assertThat(flush.durable()).as(flush.failures().toString()).isTrue();
                assertThat(flush.published().get(StorageLevel.L1).vm("vm1").orElseThrow().disk()).isNotNull();

                // from memory: the shadow's disk is the image frozen at the cut
                crash(node);
                assertThat(storage.restore("disk", id, null, null, null, null, System.out::println).level()).isEqualTo(StorageLevel.L0);
                assertThat(read(node, 0)).as("%s from memory: written before the cut", mode).isEqualTo("BEFORE-CUT");
                assertThat(read(node, 8)).as("%s from memory: written after the cut", mode).isEmpty();
                write(node, "AFTER-RESTART", 16);

                // from the node's disk: the stored image, reverted again
                crash(node);
                CheckpointStorage.RestoreReport fromDisk = storage.restore("disk", id, null, null, null, null, System.out::println);
                assertThat(fromDisk.level()).isEqualTo(StorageLevel.L1);
                assertThat(read(node, 0)).as("%s from L1", mode).isEqualTo("BEFORE-CUT");
                assertThat(read(node, 8)).as("%s from L1", mode).isEmpty();
                assertThat(read(node, 16)).as("%s from L1: written after the first restart", mode).isEmpty();
                write(node, "AFTER-SECOND-RESTART", 24);

                // from shared storage, the node's copy given up
                crash(node);
                storage.release("disk", id, StorageLevel.L1, shared, false);
                assertThat(storage.restore("disk", id, null, shared, null, null, System.out::println).level()).isEqualTo(StorageLevel.L2);
                assertThat(read(node, 0)).as("%s from L2", mode).isEqualTo("BEFORE-CUT");
                assertThat(read(node, 24)).as("%s from L2", mode).isEmpty();
            }
        }
    }

    private static void crash(SingleAgent node) throws Exception {
        ProcessHandle.of(node.client.vm("vm1").pid()).ifPresent(p -> {
            p.destroyForcibly();
            p.onExit().join();
        });
    }

    /** Writes {@code text} at 512-byte sector {@code sector} of the guest's raw disk, synced. */
    private static void write(SingleAgent node, String text, int sector) throws Exception {
        ExecResult r = node.client.exec("vm1", new ExecRequest(List.of("/bin/sh", "-c",
                "printf '%s' '" + text + "' | dd of=/dev/vda bs=512 seek=" + sector + " conv=fsync,notrunc 2>&1"), null, Duration.ofSeconds(30)));
        assertThat(r.succeeded()).as("guest write: %s", r).isTrue();
    }

    /** Reads the text at sector {@code sector} (up to the first NUL). */
    private static String read(SingleAgent node, int sector) throws Exception {
        ExecResult r = node.client.exec("vm1", new ExecRequest(List.of("/bin/sh", "-c",
                "echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 skip=" + sector + " count=1 iflag=direct 2>/dev/null | tr -d '\\000'"),
                null, Duration.ofSeconds(30)));
        assertThat(r.succeeded()).as("guest read: %s", r).isTrue();
        return r.stdout();
    }
}
