package io.mekha.local;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where Mekha's test guest lives (built by src/guest/build-guest.sh): {@code $MEKHA_GUEST_DIR}, or
 * {@code ~/.cache/mekha/guest}.
 */
public record GuestImage(Path dir) {

    public static GuestImage locate() {
        return new GuestImage(cacheDir("MEKHA_GUEST_DIR", "guest"));
    }

    /** {@code $envVar} if set, else {@code <XDG cache or ~/.cache>/mekha/<name>}: where the guest build scripts put their output. */
    static Path cacheDir(String envVar, String name) {
        String env = System.getenv(envVar);
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        String cache = System.getenv("XDG_CACHE_HOME");
        Path base = cache != null && !cache.isBlank() ? Path.of(cache) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("mekha").resolve(name);
    }

    public Path kernel() {
        return dir.resolve("vmlinuz");
    }

    public Path initrd() {
        return dir.resolve("initrd.img");
    }

    public boolean isBuilt() {
        return Files.isRegularFile(kernel()) && Files.isRegularFile(initrd());
    }

    /** Fails with the command to run when the guest has not been built. */
    public GuestImage requireBuilt() {
        if (!isBuilt()) {
            throw new IllegalStateException("the test guest is not built in " + dir
                    + ": run src/guest/build-guest.sh (scripts/demo.sh and scripts/test.sh do it for you)");
        }
        return this;
    }
}
