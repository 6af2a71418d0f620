package io.mekha.agent.qemu;

import java.util.concurrent.TimeUnit;

/** Kills a process and all its descendants and waits until they are gone. */
public final class ProcessKiller {
    private ProcessKiller() {}

    public static void killTree(Process process) {
        killTree(process.toHandle());
    }

    public static void killTree(ProcessHandle handle) {
        handle.descendants().forEach(ProcessHandle::destroyForcibly);
        handle.destroyForcibly();
        try {
            handle.onExit().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            // a process in uninterruptible sleep can take longer; nothing better to do than move on
        }
    }
}
