package io.mekha.agent.kubevirt;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Paths inside a pod, as the agent on the host reaches them through {@code /proc/<pid>/root}.
 * Symbolic links in the pod's filesystem must be followed inside that root: an absolute link such
 * as {@code /var/run -> /run} (Debian and CentOS images have it) would otherwise be resolved by the
 * kernel against the agent's own root, far from the pod. Never leaves the root ({@code ..} stops at it).
 */
public final class PodPaths {
    private static final int MAX_LINKS = 40;

    private PodPaths() {}

    /** {@code pathInPod} (absolute) under {@code root}, with every symbolic link on the way followed inside {@code root}. */
    public static Path resolve(Path root, String pathInPod) throws IOException {
        Deque<String> todo = new ArrayDeque<>();
        push(todo, pathInPod);
        Deque<String> done = new ArrayDeque<>();
        int links = 0;
        while (!todo.isEmpty()) {
            String part = todo.pop();
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                if (!done.isEmpty()) {
                    done.removeLast();
                }
                continue;
            }
            Path candidate = join(root, done).resolve(part);
            if (Files.isSymbolicLink(candidate)) {
                if (++links > MAX_LINKS) {
                    throw new IOException("too many symbolic links resolving " + pathInPod + " under " + root);
                }
                String target = Files.readSymbolicLink(candidate).toString();
                if (target.startsWith("/")) {
                    done.clear();
                }
                push(todo, target);
            } else {
                done.addLast(part);
            }
        }
        return join(root, done);
    }

    /** Whether the resolved path exists (without following a final link out of the pod). */
    public static boolean exists(Path resolved) {
        return Files.exists(resolved, LinkOption.NOFOLLOW_LINKS);
    }

    private static void push(Deque<String> todo, String path) {
        String[] parts = path.split("/");
        for (int i = parts.length - 1; i >= 0; i--) {
            todo.push(parts[i]);
        }
    }

    private static Path join(Path root, Deque<String> parts) {
        Path p = root;
        for (String part : parts) {
            p = p.resolve(part);
        }
        return p;
    }
}
