package io.mekha.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.api.AgentDtos.PartnerShadowRequest;
import io.mekha.agent.api.PartnerKind;
import io.mekha.agent.level0.Level0Copy;
import io.mekha.agent.qemu.Accelerator;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.RuntimeConfig;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.LocalVmRuntime;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.model.VmSpec;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVms;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A partner copy dropped (its checkpoint deleted, or the copying of level 0 again cancelled) while the shadow QEMU that
 * is to take it still starts: the drop finds no QEMU to stop yet, so the starting side must stop the one it started.
 * Before, that QEMU ran on unreachable, holding the guest's memory on the partner node until the agent went.
 */
@Tag("qemu")
@Tag("faults")
@ExtendWith(NoQemuLeftBehind.class)
class PartnerCopyDropTest {
    @TempDir
    Path work;

    @Test
    void aShadowCopyDroppedWhileItsQemuStartsLeavesNoQemuRunning() throws Exception {
        ExecutorService workers = Executors.newCachedThreadPool();
        ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor();
        try (SlowStart runtime = new SlowStart(new LocalVmRuntime(RuntimeConfig.defaults(work)))) {
            PartnerCopies partners = new PartnerCopies("n2", runtime, workers, timers);
            VmSpec spec = TestVms.dirtier("vm1", 128, "-m 8");
            PartnerShadowRequest request = new PartnerShadowRequest("vm1", "n1", spec, "tcg", "127.0.0.1", Instant.now(), Instant.now(),
                    null, null, null, "k".repeat(32));
            CompletableFuture<Object> hosting = CompletableFuture.supplyAsync(() -> {
                try {
                    return partners.host("cp1", request);
                } catch (Exception e) {
                    throw new java.util.concurrent.CompletionException(e);
                }
            }, workers);
            assertThat(runtime.starting.await(60, TimeUnit.SECONDS)).as("the shadow QEMU began to start").isTrue();
            assertThat(partners.list("cp1")).hasSize(1);

            partners.drop("cp1");
            runtime.go.countDown();

            assertThatThrownBy(hosting::join).rootCause().isInstanceOf(AgentException.class)
                    .hasMessageContaining("dropped while its QEMU started");
            assertThat(partners.list("cp1")).isEmpty();
            QemuVm started = runtime.started.get(5, TimeUnit.SECONDS);
            assertThat(started.exitedWithin(java.time.Duration.ofSeconds(30))).as("the dropped copy's QEMU was stopped").isTrue();
            assertThat(runtime.delegate.running()).as("QEMUs still running for a dropped copy").isEmpty();
        } finally {
            workers.shutdownNow();
            timers.shutdownNow();
        }
    }

    /** The local runtime, whose incoming QEMU starts only once the test lets it (the window a drop can fall in). */
    private static final class SlowStart implements VmRuntime {
        final LocalVmRuntime delegate;
        final CountDownLatch starting = new CountDownLatch(1);
        final CountDownLatch go = new CountDownLatch(1);
        final CompletableFuture<QemuVm> started = new CompletableFuture<>();

        SlowStart(LocalVmRuntime delegate) {
            this.delegate = delegate;
        }

        @Override
        public QemuVm startIncoming(VmSpec spec, Accelerator accel, Path diskAtCut) throws VmStartException, InterruptedException {
            starting.countDown();
            if (!go.await(60, TimeUnit.SECONDS)) {
                throw new VmStartException("the test never let the QEMU start");
            }
            QemuVm qemu = delegate.startIncoming(spec, accel, diskAtCut);
            started.complete(qemu);
            return qemu;
        }

        @Override
        public String kind() {
            return delegate.kind();
        }

        @Override
        public RuntimeConfig config() {
            return delegate.config();
        }

        @Override
        public QemuVm start(VmSpec spec) throws VmStartException, InterruptedException {
            return delegate.start(spec);
        }

        @Override
        public List<QemuVm> discover() {
            return delegate.discover();
        }

        @Override
        public Level0Copy level0(QemuVm source) throws VmStartException, InterruptedException {
            return delegate.level0(source);
        }

        @Override
        public PartnerKind partnerCopies() {
            return delegate.partnerCopies();
        }

        @Override
        public void close() {
            delegate.close();
        }
    }
}
