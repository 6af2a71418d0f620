package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.mekha.agent.network.SegmentHub;
import io.mekha.local.DirtierLog;
import io.mekha.local.RingCluster;
import io.mekha.local.RingReference;
import io.mekha.model.VmSpec;
import io.mekha.protocol.CheckpointOptions;
import io.mekha.protocol.CheckpointReport;
import io.mekha.protocol.CheckpointStorage;
import io.mekha.protocol.FlushPlan;
import io.mekha.protocol.FlushReport;
import io.mekha.storage.StorageLevel;
import io.mekha.testing.NoQemuLeftBehind;
import io.mekha.testing.TestVcs;
import io.mekha.testing.TestVms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The KubeVirt runtime with real libvirt in charge of QEMU ({@link LibvirtPods}: libvirt 11.3 in session mode as the
 * non-root launcher's user, each VMI's domain from KubeVirt's converter shape through the real hook, defined and started
 * by libvirt). The agent finds each QEMU and the hook's monitor, the coordinator checkpoints the VC (the TCP ring, on
 * the tests' segment hub in place of the pod network) with MTD into held streams, flushes them to level 1, every domain
 * is destroyed and its pod dies, and the VC is restored into new libvirt domains carrying the restore annotation, from
 * memory and from level 1: the ring's sums go on exactly, each disk as at the cut. libvirt says the truth all along and
 * can still pause, resume, shut down and live-migrate the domains afterwards (the dirtier's hashes exact there).
 */
@Tag("qemu")
@Tag("libvirt")
@ExtendWith(NoQemuLeftBehind.class)
class LibvirtKubeVirtTest {
    static final String NS = "hpc";
    static final String RESTORE = "\"mekha.io/restore-from\": \"hpc.lv1\"";

    @TempDir
    Path work;

    @BeforeEach
    void needsRootAndLibvirt() {
        assumeTrue("root".equals(System.getProperty("user.name")), "pods' namespaces, cgroups and uid 107 need root");
        assertThat(Path.of("/usr/sbin/libvirtd")).as("libvirt's daemon: run scripts/install-deps.sh (libvirt 11.3 from bookworm-backports)")
                .exists();
    }

    @Test
    void aVcOfLibvirtDomainsIsCheckpointedDestroyedAndRestoredIntoNewDomainsExactlyWithLibvirtSayingTheTruth() throws Exception {
        Path base = LibvirtPods.containerDisk(work.resolve("containerdisk.qcow2"));
        RingCluster ring = new RingCluster(3, 100000, 30, 16, 4);
        try (SegmentHub hub = SegmentHub.open("lan", 0); LibvirtPods pods = new LibvirtPods(work); KubeVirtNode node = new KubeVirtNode(work)) {
            Map<String, VmSpec> specs = new LinkedHashMap<>();
            TestVcs.ring(ring, hub.port(), 256).forEach(spec -> specs.put(NS + "_" + spec.name(), spec));
            pods.nameTo(node.client);
            Map<String, LibvirtPods.Vmi> first = new LinkedHashMap<>();
            for (var e : specs.entrySet()) {
                first.put(e.getKey(), pods.launch(e.getValue().name() + "-a", NS, e.getValue(), "", base));
            }
            for (LibvirtPods.Vmi vmi : first.values()) {
                assertStartedByLibvirt(vmi);
                assertThat(LibvirtPods.domstate(vmi)).isEqualTo("running (booted)");
            }
            awaitAttached(node, first);
            for (LibvirtPods.Vmi vmi : first.values()) {
                awaitStep(vmi, 15);
                writeDisk(vmi, "BEFORE-CUT", 0);
            }
            CheckpointOptions options = CheckpointOptions.defaults();
            CheckpointReport report = node.coordinator.checkpoint("lv1", List.copyOf(specs.keySet()), options, System.out::println);
            Map<String, Long> reached = new HashMap<>();
            first.forEach((vm, vmi) -> reached.put(vm, lastStep(vmi)));
            for (LibvirtPods.Vmi vmi : first.values()) {
                writeDisk(vmi, "AFTER-CUT", 8);
                assertThat(LibvirtPods.domstate(vmi)).as("%s after the cut", vmi.domain()).startsWith("running");
            }
            for (LibvirtPods.Vmi vmi : first.values()) {
                // libvirt heard the stop at Ts and the cont at Tr on its own monitor, and took them for what they were
                assertThat(Files.readAllLines(vmi.pod().daemonLog())).as("libvirt's handling of %s's cut", vmi.domain())
                        .anyMatch(l -> l.contains("Transitioned guest " + vmi.domain() + " to paused state, reason unknown"))
                        .anyMatch(l -> l.contains("Transitioned guest " + vmi.domain() + " into running state, reason 'unpaused'"));
            }
            FlushReport flush = node.storage.flush(CheckpointStorage.draft(NS, report, options, Instant.now()), sizes(report),
                    FlushPlan.level1(), System.out::println);
            assertThat(flush.failures()).isEmpty();

            // every domain destroyed through libvirt, well after the cut; then the pods go
            for (var e : first.entrySet()) {
                awaitStep(e.getValue(), reached.get(e.getKey()) + 20);
            }
            for (LibvirtPods.Vmi vmi : first.values()) {
                LibvirtPods.require(vmi.pod(), "destroy", vmi.domain());
                pods.crash(vmi.pod());
            }

            Map<String, LibvirtPods.Vmi> second = new LinkedHashMap<>();
            for (var e : specs.entrySet()) {
                second.put(e.getKey(), pods.launch(e.getValue().name() + "-b", NS, e.getValue(), RESTORE, base));
            }
            for (LibvirtPods.Vmi vmi : second.values()) {
                assertStartedByLibvirt(vmi);
                System.out.println(vmi.domain() + " waiting for its state: libvirt says " + LibvirtPods.domstate(vmi));
            }
            CheckpointStorage.RestoreReport fromMemory = node.storage.restore(NS, "lv1", null, null, null, null, System.out::println);
            assertThat(fromMemory.level()).isEqualTo(StorageLevel.L0);
            assertRingContinuesExactly(ring, second, reached);
            for (LibvirtPods.Vmi vmi : second.values()) {
                assertThat(LibvirtPods.domstate(vmi)).as("%s restored", vmi.domain()).startsWith("running");
                assertThat(readDisk(vmi, 0)).as("%s: written before the cut", vmi.domain()).isEqualTo("BEFORE-CUT");
                assertThat(readDisk(vmi, 8)).as("%s: written after the cut", vmi.domain()).isEmpty();
            }
            for (LibvirtPods.Vmi vmi : second.values()) {
                LibvirtPods.require(vmi.pod(), "destroy", vmi.domain());
                pods.crash(vmi.pod());
            }

            Map<String, LibvirtPods.Vmi> third = new LinkedHashMap<>();
            for (var e : specs.entrySet()) {
                third.put(e.getKey(), pods.launch(e.getValue().name() + "-c", NS, e.getValue(), RESTORE, base));
            }
            CheckpointStorage.RestoreReport fromDisk = node.storage.restore(NS, "lv1", StorageLevel.L1, null, null, null, System.out::println);
            assertThat(fromDisk.level()).isEqualTo(StorageLevel.L1);
            assertRingContinuesExactly(ring, third, reached);
            for (LibvirtPods.Vmi vmi : third.values()) {
                assertThat(readDisk(vmi, 0)).as("%s from L1: written before the cut", vmi.domain()).isEqualTo("BEFORE-CUT");
                assertThat(readDisk(vmi, 8)).as("%s from L1: written after the cut", vmi.domain()).isEmpty();
            }

            // libvirt keeps working on a restored domain: pause, resume, stop
            LibvirtPods.Vmi vm1 = third.get("hpc_vm1");
            LibvirtPods.require(vm1.pod(), "suspend", vm1.domain());
            assertThat(LibvirtPods.domstate(vm1)).isEqualTo("paused (user)");
            long pausedAt = lastStep(vm1);
            LibvirtPods.require(vm1.pod(), "resume", vm1.domain());
            assertThat(LibvirtPods.domstate(vm1)).isEqualTo("running (unpaused)");
            awaitStep(vm1, pausedAt + 2);
            node.coordinator.discard("lv1");
            for (LibvirtPods.Vmi vmi : third.values()) {
                LibvirtPods.require(vmi.pod(), "destroy", vmi.domain());
                assertThat(LibvirtPods.domstate(vmi)).isEqualTo("shut off (destroyed)");
            }
            for (LibvirtPods.Pod pod : List.of(first.get("hpc_vm1").pod(), second.get("hpc_vm1").pod())) {
                List<String> handling = Files.readAllLines(pod.daemonLog()).stream()
                        .filter(l -> (l.contains("qemuProcessHandle") && !l.contains("MigrationPass") && !l.contains("HandleEvent:"))
                                || l.contains("Transitioned")).toList();
                System.out.println("pod " + pod.name() + ": libvirt's handling of QEMU's events:");
                handling.forEach(l -> System.out.println("  " + l));
                assertThat(libvirtLog(pod)).as("pod %s: no libvirt warning or error about a migration it did not start", pod.name())
                        .noneMatch(l -> l.toLowerCase(java.util.Locale.ROOT).contains("migrat"));
            }
        }
    }

    /**
     * The restored ring goes on from the cut exactly: each VM printed again from at most the step it had reached at the
     * cut, and every sum it printed since equals an uninterrupted run's (computed on the host).
     */
    static void assertRingContinuesExactly(RingCluster ring, Map<String, LibvirtPods.Vmi> restored, Map<String, Long> reached)
            throws Exception {
        for (var e : restored.entrySet()) {
            awaitStep(e.getValue(), reached.get(e.getKey()) + 15);
        }
        Map<String, TreeMap<Long, Long>> printed = new LinkedHashMap<>();
        for (var e : restored.entrySet()) {
            printed.put(e.getKey(), RingReference.printed(Files.readAllLines(e.getValue().console()), node(e.getKey())));
        }
        long[][] reference = ring.reference((int) printed.values().stream().mapToLong(TreeMap::lastKey).max().orElseThrow());
        for (var e : printed.entrySet()) {
            assertThat(e.getValue().firstKey()).as("%s goes on from the cut", e.getKey()).isLessThanOrEqualTo(reached.get(e.getKey()) + 1);
            assertThat(RingReference.mismatches(e.getValue(), reference, node(e.getKey()))).as("%s: its sums after the restart", e.getKey())
                    .isEmpty();
        }
    }

    /** The ring's node of VM {@code hpc_vmN}. */
    static int node(String vm) {
        return RingCluster.node(vm.substring(vm.indexOf('_') + 1));
    }

    static long lastStep(LibvirtPods.Vmi vmi) {
        try {
            return RingReference.lastStepReached(Files.readString(vmi.console()));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static void awaitStep(LibvirtPods.Vmi vmi, long step) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (!Files.exists(vmi.console()) || lastStep(vmi) < step) {
            assertThat(System.nanoTime()).as("%s reached step %d", vmi.domain(), step).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    /**
     * What libvirt shows while the agent holds a VM paused (the coordinator gone silent after the cut: the watchdog
     * resumes it), and that a restored domain is still libvirt's: KubeVirt's live migration of it (libvirt's own, with
     * virt-launcher's flags) carries the guest on, the agent drives the migrated QEMU, and KubeVirt's clock set after a
     * migration is measured against the Virtual policy's guest time.
     */
    @Test
    void aVmHeldByTheAgentShowsPausedAndARestoredDomainStillLiveMigratesUnderLibvirt() throws Exception {
        Path base = LibvirtPods.containerDisk(work.resolve("containerdisk.qcow2"));
        VmSpec spec = TestVms.dirtier("vm1", 256, "-m 16 -d 4 -i 200");
        try (LibvirtPods pods = new LibvirtPods(work); KubeVirtNode node = new KubeVirtNode(work)) {
            pods.nameTo(node.client);
            LibvirtPods.Vmi a = pods.launch("vm1-a", NS, spec, "", base);
            awaitAttached(node, Map.of("hpc_vm1", a));
            LauncherPods.awaitRound(a.console(), 4);

            // a VM its user paused through KubeVirt (virtctl pause: libvirt's suspend) is refused, never unpaused by a cut at Tr
            LibvirtPods.require(a.pod(), "suspend", a.domain());
            assertThatThrownBy(() -> node.coordinator.checkpoint("lp0", List.of("hpc_vm1"), CheckpointOptions.defaults(), System.out::println))
                    .hasMessageContaining("VM 'hpc_vm1' is not running (QEMU's run state is 'paused')").hasMessageContaining("virtctl unpause")
                    .hasMessageContaining("nothing was paused");
            assertThat(LibvirtPods.domstate(a)).as("still paused by its user").isEqualTo("paused (user)");
            LibvirtPods.require(a.pod(), "resume", a.domain());

            // its user pauses it during the live stage (after the prepare, before Ts): captured as it is, left paused at Tr
            node.client.prepare("lp1", new io.mekha.agent.api.AgentDtos.PrepareRequest(List.of("hpc_vm1"), "MTD", null, null,
                    Duration.ofSeconds(30), null, null));
            LibvirtPods.require(a.pod(), "suspend", a.domain());
            node.client.suspend("lp1", node.client.time().now().plusMillis(300));
            node.client.awaitPhase("lp1", io.mekha.agent.api.VmPhase.CAPTURED, Duration.ofSeconds(30));
            node.client.resume("lp1", node.client.time().now().plusMillis(200));
            var done = node.client.awaitPhase("lp1", io.mekha.agent.api.VmPhase.RESUMED, Duration.ofSeconds(30)).vms().get(0);
            assertThat(done.phase()).as("%s", done).isEqualTo(io.mekha.agent.api.VmPhase.RESUMED);
            assertThat(done.error()).contains("left paused").contains("paused by someone else");
            assertThat(LibvirtPods.domstate(a)).as("a pause of its user during the live stage stays").isEqualTo("paused (user)");
            assertThat(node.client.vm("hpc_vm1").state()).as("QEMU did not run it at Tr").isNotEqualTo("running");
            long heldAt = lastRound(a);
            node.client.discard("lp1");
            LibvirtPods.require(a.pod(), "resume", a.domain());
            assertThat(LibvirtPods.domstate(a)).isEqualTo("running (unpaused)");
            LauncherPods.awaitRound(a.console(), heldAt + 2);
            // the coordinator goes silent after the cut: libvirt sees a pause it did not make, then the watchdog's resume
            node.client.prepare("lw1", new io.mekha.agent.api.AgentDtos.PrepareRequest(List.of("hpc_vm1"), "StopAndCopy", null, null,
                    Duration.ofSeconds(2), null, null));
            node.client.suspend("lw1", node.client.time().now().plusMillis(300));
            String held = awaitDomstate(a, s -> s.startsWith("paused"));
            assertThat(held).as("libvirt's state while the agent holds the VM").isEqualTo("paused (unknown)");
            String resumed = awaitDomstate(a, s -> s.startsWith("running"));
            assertThat(resumed).as("after the watchdog's resume").isEqualTo("running (unpaused)");
            assertThat(node.client.status("lw1").vms().get(0).error()).contains("no resume from the coordinator");

            node.coordinator.checkpoint("lv2", List.of("hpc_vm1"), CheckpointOptions.defaults(), System.out::println);
            long cut = lastRound(a);
            LauncherPods.awaitRound(a.console(), cut + 4);
            LibvirtPods.require(a.pod(), "destroy", a.domain());
            TreeMap<Long, String> before = DirtierLog.parse(Files.readAllLines(a.console()));
            pods.crash(a.pod());
            LibvirtPods.Vmi b = pods.launch("vm1-b", NS, spec, "\"mekha.io/restore-from\": \"hpc.lv2\"", base);
            node.storage.restore(NS, "lv2", null, null, null, null, System.out::println);
            assertContinuesExactly(Map.of("hpc_vm1", b), Map.of("hpc_vm1", before), Map.of("hpc_vm1", cut));
            double lagBefore = guestClockLead(b);
            System.out.printf("restored under the Virtual policy: guest clock %.3f s from the host's%n", lagBefore);

            // KubeVirt live-migrates the restored VMI: a target pod for the same VMI, libvirt's peer-to-peer migration with
            // virt-launcher's flags (live, p2p, persistent on the target, the pod-only overlay copied incrementally)
            LibvirtPods.Pod target = pods.migrationTarget("vm1-c", b, spec, base);
            long roundAtMigration = lastRound(b);
            LibvirtPods.Virsh migration = LibvirtPods.virsh(b.pod(), "migrate", "--live", "--p2p", "--persistent", "--copy-storage-inc",
                    "--verbose", b.domain(), target.uri());
            System.out.println("virsh migrate: " + migration.out());
            assertThat(migration.ok()).as("libvirt live-migrates the restored domain: %s; libvirt's log: %s", migration.out(),
                    libvirtLog(b.pod())).isTrue();
            LibvirtPods.Vmi c = pods.migrated(b, target);
            List<String> targetArgs = commandLine(c.qemu());
            System.out.println("the migration target's QEMU: " + targetArgs);
            // the restored domain's XML (the hook's -incoming defer in it) went to the target as libvirt migrates it
            assertThat(targetArgs.stream().filter("-incoming"::equals).count()).as("the target's -incoming arguments: %s", targetArgs)
                    .isPositive();
            assertThat(LibvirtPods.domstate(c)).isEqualTo("running (migrated)");
            assertThat(LibvirtPods.virsh(b.pod(), "domstate", "--reason", b.domain()).out()).as("the source after the migration")
                    .startsWith("shut off");
            LauncherPods.awaitRound(c.console(), roundAtMigration + 3);
            assertThat(readDisk(c, 0)).as("the disk came along").isEmpty();
            awaitAttached(node, Map.of("hpc_vm1", c));
            node.coordinator.checkpoint("lv3", List.of("hpc_vm1"), CheckpointOptions.defaults(), System.out::println);
            LauncherPods.awaitRound(c.console(), lastRound(c) + 2);

            // virt-launcher's finalizeMigrationTarget sets the guest's clock to the host's (SetTime, through libvirt's agent)
            double lagAfterMigration = guestClockLead(c);
            LibvirtPods.Virsh set = LibvirtPods.virsh(c.pod(), "domtime", c.domain(), "--now");
            double lagAfterSet = guestClockLead(c);
            System.out.printf("after the migration: guest clock %.3f s from the host's; KubeVirt's set-time (%s): %.3f s%n",
                    lagAfterMigration, set.ok() ? "done" : set.out(), lagAfterSet);
            // the Virtual policy kept the guest on its own time through the restore and the migration (it does not see the
            // seconds the VC was down); KubeVirt's set-time steps it to the host's at once (virsh sets whole seconds)
            assertThat(lagBefore).as("the restored guest's clock is behind the host's by the time the VC was down").isLessThan(-2);
            assertThat(lagAfterMigration).as("a live migration keeps it").isLessThan(-2);
            assertThat(set.ok()).as("KubeVirt's set-time through libvirt: %s", set.out()).isTrue();
            assertThat(lagAfterSet).as("KubeVirt's set-time steps the guest to host time").isBetween(-1.5, 0.5);
            node.coordinator.discard("lv2");
            node.coordinator.discard("lv3");
            // and libvirt shuts the migrated, restored domain down through the guest agent
            LibvirtPods.require(c.pod(), "shutdown", "--mode", "agent", c.domain());
            assertThat(awaitDomstate(c, st -> st.startsWith("shut off"))).isEqualTo("shut off (shutdown)");
        }
    }

    /** A process's arguments, from /proc (ProcessHandle shows none for another user's process). */
    static List<String> commandLine(ProcessHandle p) throws Exception {
        String raw = new String(Files.readAllBytes(Path.of("/proc/" + p.pid() + "/cmdline")), java.nio.charset.StandardCharsets.UTF_8);
        return List.of(raw.split("\0"));
    }

    /** The guest's clock minus the host's, in seconds (guest-get-time through libvirt's agent channel). */
    static double guestClockLead(LibvirtPods.Vmi vmi) throws Exception {
        long host0 = System.currentTimeMillis();
        long guestNs = GuestExec.call(vmi, "{\"execute\":\"guest-get-time\"}", Duration.ofSeconds(60)).path("return").asLong();
        long host1 = System.currentTimeMillis();
        return (guestNs / 1e6 - (host0 + host1) / 2.0) / 1000.0;
    }

    static String awaitDomstate(LibvirtPods.Vmi vmi, java.util.function.Predicate<String> state) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            String s = LibvirtPods.domstate(vmi);
            if (state.test(s)) {
                return s;
            }
            assertThat(System.nanoTime()).as("%s: libvirt says %s", vmi.domain(), s).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    /**
     * The hook's output is a domain libvirt itself defines (not only one its schema accepts): for virt-launcher's domain
     * shapes (the KubeVirt-shaped one of {@link DomainHookTest}, with its tap NIC and {@code type="kvm"}, and this tier's),
     * for a plain VMI, one being restored, and the Step policy; libvirt keeps Mekha's monitor, the incoming argument and
     * the RTC that follows guest time in the domain it stores.
     */
    @Test
    void theHooksDomainsAreDefinedByLibvirtItself() throws Exception {
        try (LibvirtPods pods = new LibvirtPods(work)) {
            LibvirtPods.Pod pod = pods.start("define");
            VmSpec spec = TestVms.dirtier("vm1", 256, "-m 8 -d 1 -i 200");
            // the sample names virt-launcher's machine type (its QEMU is CentOS Stream's); Debian's QEMU has no RHEL machine
            // types, and libvirt checks the machine against the emulator at define: the converter's default, q35, here
            String launcherShaped = DomainHookTest.sample();
            String asIs = LibvirtPods.virsh(pod, "define", Files.writeString(pod.dir().resolve("as-is.xml"), launcherShaped).toString()).out();
            // libvirt checks the domain type against what QEMU can do for the user it runs QEMU as: where /dev/kvm is not
            // open to that user (a node of mode 0600, as on some of these machines) it refuses type kvm first
            boolean kvmForLibvirt = !asIs.contains("does not support virt type 'kvm'");
            assertThat(asIs).as("libvirt checks what the schema cannot")
                    .contains(kvmForLibvirt ? "does not support machine type 'pc-q35-rhel9.6.0'" : "does not support virt type 'kvm'");
            String converterShaped = launcherShaped.replace("pc-q35-rhel9.6.0", "q35");
            if (!kvmForLibvirt) {
                // the hook keeps the domain's type as it finds it (checked in DomainHookTest); here libvirt can only define a TCG one
                System.out.println("libvirt sees no usable KVM on this host: the converter-shaped sample is defined as type qemu");
                converterShaped = converterShaped.replaceFirst("<domain type=\"kvm\"", "<domain type=\"qemu\"");
            }
            Map<String, String> samples = Map.of("converter-shaped (type kvm where libvirt has KVM, tap NIC)", converterShaped,
                    "this tier's", LibvirtPods.domainXml("hpc_vm1", "5d3c6b6e-2f4e-4f53-9a2e-7b7b0c1f2a10", spec, null));
            Map<String, String> annotations = Map.of("plain", "", "restored", "\"mekha.io/restore-from\": \"hpc.cp1\"",
                    "Step", "\"mekha.io/time-policy\": \"Step\"");
            for (var sample : samples.entrySet()) {
                for (var annotation : annotations.entrySet()) {
                    String what = sample.getKey() + ", " + annotation.getKey();
                    DomainHookTest.Run hooked = DomainHookTest.hook(LibvirtPods.vmiJson(NS, "vm1", "5d3c6b6e-2f4e-4f53-9a2e-7b7b0c1f2a10",
                            annotation.getValue()), sample.getValue());
                    assertThat(hooked.exit()).as("%s: %s", what, hooked.err()).isZero();
                    Path file = Files.writeString(pod.dir().resolve("hooked.xml"), hooked.out());
                    LibvirtPods.Virsh define = LibvirtPods.virsh(pod, "define", file.toString());
                    assertThat(define.ok()).as("libvirt defines the hook's domain (%s): %s", what, define.out()).isTrue();
                    String stored = LibvirtPods.require(pod, "dumpxml", "--inactive", "hpc_vm1");
                    assertThat(stored).as(what).contains("path=/var/run/kubevirt-private/mekha-qmp.sock").contains("chardev=mekha-qmp,mode=control");
                    assertThat(stored.contains("<qemu:arg value='-incoming'/>")).as("%s: -incoming", what)
                            .isEqualTo(annotation.getKey().equals("restored"));
                    assertThat(stored.contains("track='guest'")).as("%s: the RTC follows guest time", what)
                            .isEqualTo(!annotation.getKey().equals("Step"));
                    LibvirtPods.require(pod, "undefine", "hpc_vm1");
                }
            }
        }
    }

    /** libvirt started this QEMU: it is the pid libvirt wrote down, libvirt lists the domain, and the pod's init reaps it. */
    static void assertStartedByLibvirt(LibvirtPods.Vmi vmi) throws Exception {
        assertThat(LibvirtPods.require(vmi.pod(), "list", "--name")).contains(vmi.domain());
        ProcessHandle qemu = vmi.qemu();
        assertThat(qemu.info().command().orElse("")).contains("qemu-system");
        // libvirt forks QEMU twice (daemonized), so QEMU's parent is the pod's reaper, whose other child is libvirt's daemon
        assertThat(qemu.parent().map(ProcessHandle::pid)).as("QEMU's parent is the pod's init").contains(vmi.pod().init().pid());
        assertThat(vmi.pod().init().toHandle().children().map(p -> p.info().command().orElse("")))
                .as("the pod's init runs libvirt's daemon").anyMatch(c -> c.endsWith("/libvirtd"));
        assertThat(Files.getAttribute(Path.of("/proc/" + qemu.pid()), "unix:uid")).as("QEMU runs as the launcher's user")
                .isEqualTo(LibvirtPods.LAUNCHER_UID);
    }

    /** libvirt's log of {@code pod}: its warnings and errors. */
    static List<String> libvirtLog(LibvirtPods.Pod pod) throws Exception {
        return Files.readAllLines(pod.daemonLog()).stream().filter(l -> l.contains(": error : ") || l.contains(": warning : ")).toList();
    }

    private void awaitAttached(KubeVirtNode node, Map<String, LibvirtPods.Vmi> vmis) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            var seen = node.client.vms();
            boolean all = vmis.values().stream().allMatch(v -> seen.stream().anyMatch(s -> s.name().equals(v.domain()) && s.pid() == v.pid()
                    && s.state().equals("running")));
            if (all) {
                return;
            }
            assertThat(System.nanoTime()).as("the agent attached to libvirt's QEMUs: %s", seen).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    /** Writes {@code text} at sector {@code sector} of the guest's disk, synced, through libvirt's guest agent channel. */
    static void writeDisk(LibvirtPods.Vmi vmi, String text, int sector) throws Exception {
        GuestExec.run(vmi, "printf '%s' '" + text + "' | dd of=/dev/vda bs=512 seek=" + sector + " conv=fsync,notrunc 2>&1");
    }

    static String readDisk(LibvirtPods.Vmi vmi, int sector) throws Exception {
        return GuestExec.run(vmi, "echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 skip=" + sector
                + " count=1 iflag=direct 2>/dev/null | tr -d '\\000'");
    }

    static void assertContinuesExactly(Map<String, LibvirtPods.Vmi> restored, Map<String, TreeMap<Long, String>> before,
                                       Map<String, Long> cutRound) throws Exception {
        Map<String, Path> consoles = new HashMap<>();
        restored.forEach((vm, vmi) -> consoles.put(vm, vmi.console()));
        KubeVirtAgentTest.assertConsolesContinueExactly(consoles, before, cutRound);
    }

    static long lastRound(LibvirtPods.Vmi vmi) {
        try {
            return DirtierLog.lastRoundReached(Files.readString(vmi.console()));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Map<String, Long> sizes(CheckpointReport report) {
        Map<String, Long> sizes = new HashMap<>();
        report.vms().forEach(v -> sizes.put(v.vm(), v.figures().bytesTransferred()));
        return sizes;
    }
}
