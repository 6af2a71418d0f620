package io.mekha.agent.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.qemu.MigrationStatus;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The gate before a background snapshot's VM may run again, on QEMU's readings scripted: it opens only once QEMU saved a
 * RAM page (device state saved, write tracking armed before that) and then finds the VM still paused; never on "active"
 * alone, which QEMU reports before the device state is saved.
 */
@Tag("fast")
class SnapshotArmedTest {

    /** A QEMU that answers query-migrate with {@code readings} in turn (the last one repeated), and its run state after. */
    private static final class Scripted implements SnapshotArmed.Qemu {
        final Deque<MigrationStatus> readings;
        final String runState;
        final List<String> asked = new ArrayList<>();

        Scripted(String runState, MigrationStatus... readings) {
            this.readings = new ArrayDeque<>(List.of(readings));
            this.runState = runState;
        }

        @Override
        public MigrationStatus migration() {
            asked.add("query-migrate");
            return readings.size() > 1 ? readings.poll() : readings.peek();
        }

        @Override
        public String runState() {
            asked.add("query-status");
            return runState;
        }
    }

    private static MigrationStatus reading(String status, long pages) {
        return new MigrationStatus(status, pages * 4096, 0, 256L << 20, 1, null, null, null, pages);
    }

    @Test
    void opensOnlyOnceTheFirstPageIsSavedAndTheVmIsStillPaused() throws Exception {
        Scripted qemu = new Scripted("paused", reading("setup", 0), reading("active", 0), reading("active", 0), reading("active", 0),
                reading("active", 3));
        MigrationStatus armed = SnapshotArmed.await("vm1", qemu, Duration.ofSeconds(5));
        assertThat(armed.pagesSaved()).isEqualTo(3);
        // five readings, the run state asked only after the pages: "active" alone never opened it
        assertThat(qemu.asked).containsExactly("query-migrate", "query-migrate", "query-migrate", "query-migrate", "query-migrate",
                "query-status");
    }

    @Test
    void aSnapshotCompletedBeforeItWasSeenActiveOpensToo() throws Exception {
        Scripted qemu = new Scripted("paused", reading("setup", 0), reading("completed", 0));
        assertThat(SnapshotArmed.await("vm1", qemu, Duration.ofSeconds(5)).completed()).isTrue();
    }

    @Test
    void aQemuThatResumedTheVmByItselfIsRefusedWithTheQemuVersionItNeeds() {
        Scripted qemu = new Scripted("running", reading("active", 10));
        assertThatThrownBy(() -> SnapshotArmed.await("vm1", qemu, Duration.ofSeconds(5)))
                .isInstanceOf(TransferException.class).hasMessageContaining("set it running by itself").hasMessageContaining("QEMU 9.0");
    }

    @Test
    void aFailedSnapshotSaysWhyAndOneThatNeverSavesAPageTimesOutStillPaused() {
        MigrationStatus failed = new MigrationStatus("failed", 0, 0, 0, 0, null, null, "uffd: write protection not supported", 0);
        assertThatThrownBy(() -> SnapshotArmed.await("vm1", new Scripted("paused", reading("setup", 0), failed), Duration.ofSeconds(5)))
                .isInstanceOf(TransferException.class).hasMessageContaining("failed").hasMessageContaining("write protection not supported");
        assertThatThrownBy(() -> SnapshotArmed.await("vm1", new Scripted("paused", reading("active", 0)), Duration.ofMillis(50)))
                .isInstanceOf(TransferException.class).hasMessageContaining("did not save the device state within")
                .hasMessageContaining("stays paused");
    }

    @Test
    void aMonitorErrorIsPassedOn() {
        SnapshotArmed.Qemu broken = new SnapshotArmed.Qemu() {
            @Override
            public MigrationStatus migration() throws QmpException {
                throw new QmpException("QMP connection closed");
            }

            @Override
            public String runState() {
                return "paused";
            }
        };
        assertThatThrownBy(() -> SnapshotArmed.await("vm1", broken, Duration.ofSeconds(1))).isInstanceOf(QmpException.class);
    }
}
