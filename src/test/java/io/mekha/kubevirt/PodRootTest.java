package io.mekha.kubevirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.mekha.agent.kubevirt.PodRoot;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14, item 2: a tenant controls every name in its pod and may swap any of them for a link at any moment; the
 * root agent must never be led by one onto the host's filesystem. Real files: a directory plays the pod's root, a
 * sibling directory the host's files the tenant is after.
 */
@Tag("fast")
@Tag("security")
class PodRootTest {
    @TempDir
    Path work;
    Path pod;
    Path hostSecret;

    @BeforeEach
    void tree() throws IOException {
        pod = Files.createDirectories(work.resolve("pod"));
        Files.createDirectories(pod.resolve("etc"));
        Files.writeString(pod.resolve("etc/secret"), "POD");
        hostSecret = Files.writeString(Files.createDirectories(work.resolve("host")).resolve("secret"), "HOST");
    }

    @Test
    void anAbsoluteLinkInThePodResolvesInsideThePodNeverOnTheHost() throws Exception {
        Files.createSymbolicLink(pod.resolve("to-host"), hostSecret.toAbsolutePath()); // what the old resolve-then-open followed
        Files.createSymbolicLink(pod.resolve("to-pod-etc"), Path.of("/etc/secret"));
        try (PodRoot root = PodRoot.ofDirectory(pod)) {
            assertThatThrownBy(() -> root.open("/to-host")).hasMessageContaining("does not exist in the pod");
            try (PodRoot.Opened f = root.open("/to-pod-etc")) {
                assertThat(Files.readString(f.path())).isEqualTo("POD");
            }
        }
    }

    @Test
    void dotDotStopsAtThePodsRoot() throws Exception {
        Files.createDirectories(pod.resolve("a/b"));
        Files.createSymbolicLink(pod.resolve("a/b/up"), Path.of("../../../../../../../host/secret"));
        try (PodRoot root = PodRoot.ofDirectory(pod)) {
            assertThatThrownBy(() -> root.open("/a/b/up")).hasMessageContaining("does not exist in the pod");
            assertThatThrownBy(() -> root.open("/../host/secret")).hasMessageContaining("does not exist in the pod");
            assertThatThrownBy(() -> root.open("relative")).hasMessageContaining("must be absolute");
        }
    }

    @Test
    void aDirectorySwappedForALinkAfterTheOpenChangesNothing() throws Exception {
        Path disks = Files.createDirectories(pod.resolve("disk-data"));
        Files.writeString(disks.resolve("disk.qcow2"), "REAL");
        Path decoys = Files.createDirectories(work.resolve("host/decoys"));
        Path decoy = Files.writeString(decoys.resolve("disk.qcow2"), "DECOY");
        try (PodRoot root = PodRoot.ofDirectory(pod); PodRoot.Opened disk = root.open("/disk-data/disk.qcow2")) {
            // the tenant's move, between the agent's check and its copy (the live stage, say)
            Files.move(disks, pod.resolve("disk-data.real"));
            Files.createSymbolicLink(pod.resolve("disk-data"), decoys.toAbsolutePath());

            assertThat(Files.readString(disk.path())).as("read at the cut").isEqualTo("REAL");
            try (FileChannel out = FileChannel.open(disk.path(), StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                out.write(ByteBuffer.wrap("RESTORED".getBytes()));
            }
            assertThat(Files.readString(pod.resolve("disk-data.real/disk.qcow2"))).as("written at a restore").isEqualTo("RESTORED");
            assertThat(Files.readString(decoy)).isEqualTo("DECOY");
        }
    }

    @Test
    void removingAndChowningInAPodDirectoryNeverFollowsALink() throws Exception {
        Path priv = Files.createDirectories(pod.resolve("private"));
        Files.createSymbolicLink(priv.resolve("stream.sock"), hostSecret.toAbsolutePath());
        Files.createSymbolicLink(priv.resolve("owned"), hostSecret.toAbsolutePath());
        Object ownerBefore = Files.getAttribute(hostSecret, "unix:uid");
        try (PodRoot root = PodRoot.ofDirectory(pod); PodRoot.Opened dir = root.openDirectory("/private")) {
            dir.unlink("stream.sock");
            dir.chown("owned", 4242, 4242);
            dir.unlink("never-was"); // absent is fine

            assertThat(Files.exists(priv.resolve("stream.sock"), LinkOption.NOFOLLOW_LINKS)).isFalse();
            assertThat(Files.readString(hostSecret)).isEqualTo("HOST");
            assertThat(Files.getAttribute(hostSecret, "unix:uid")).as("the host file's owner").isEqualTo(ownerBefore);
            assertThat(Files.getAttribute(priv.resolve("owned"), "unix:uid", LinkOption.NOFOLLOW_LINKS)).isEqualTo(4242);
            assertThatThrownBy(() -> dir.unlink("../host/secret")).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void aSocketIsBoundInThePodDirectoryAndReachedThroughItsDescriptor() throws Exception {
        Files.createDirectories(pod.resolve("var/run/kubevirt-private"));
        Files.createSymbolicLink(pod.resolve("run"), Path.of("/var/run")); // images link /run to /var/run or the reverse
        try (PodRoot root = PodRoot.ofDirectory(pod); PodRoot.Opened dir = root.openDirectory("/run/kubevirt-private");
             ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(dir.child("held.sock")));
            assertThat(Files.exists(pod.resolve("var/run/kubevirt-private/held.sock"), LinkOption.NOFOLLOW_LINKS)).isTrue();
            try (PodRoot.Opened socket = root.open("/var/run/kubevirt-private/held.sock");
                 SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(socket.path()));
                 SocketChannel accepted = server.accept()) {
                client.write(ByteBuffer.wrap(new byte[] {42}));
                ByteBuffer got = ByteBuffer.allocate(1);
                accepted.read(got);
                assertThat(got.get(0)).isEqualTo((byte) 42);
            }
        }
    }
}
