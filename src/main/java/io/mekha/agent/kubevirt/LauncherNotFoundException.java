package io.mekha.agent.kubevirt;

/** A VMI whose QEMU this agent cannot reach, with what to check. */
public final class LauncherNotFoundException extends Exception {
    public LauncherNotFoundException(String message) {
        super(message);
    }
}
