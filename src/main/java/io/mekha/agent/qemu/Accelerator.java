package io.mekha.agent.qemu;

import java.util.Locale;

/** Which QEMU accelerator a VM asks for; {@code AUTO} tries KVM and falls back to TCG if the guest does not boot. */
public enum Accelerator {
    TCG, KVM, AUTO;

    public static Accelerator parse(String text) {
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown accelerator '" + text + "': use tcg, kvm or auto");
        }
    }
}
