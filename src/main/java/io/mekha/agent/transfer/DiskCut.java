package io.mekha.agent.transfer;

import io.mekha.agent.qemu.QemuCommandLine;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.qmp.QmpClient;
import io.mekha.qmp.QmpException;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Freezes a paused VM's disk at its cut: QEMU moves the VM onto a new overlay ({@code blockdev-snapshot-sync}), and
 * the overlay it wrote until now (its shadow's backing file) is never written again. Runs while the VM is still
 * paused after its memory was captured, so disk and memory are cut at one instant.
 */
final class DiskCut {
    private static final Pattern NUMBERED = Pattern.compile("disk-(\\d+)\\.qcow2");

    private DiskCut() {}

    /** The image that holds the disk at the cut (null: the VM has no disk). */
    static Path freeze(QemuVm source) throws TransferException {
        Path current = source.disk();
        if (current == null) {
            return null;
        }
        Matcher numbered = NUMBERED.matcher(current.getFileName().toString());
        int generation = numbered.matches() ? Integer.parseInt(numbered.group(1)) : 0;
        Path next = current.resolveSibling("disk-" + (generation + 1) + ".qcow2");
        try {
            source.qmp().execute("blockdev-snapshot-sync", QmpClient.args().put("device", QemuCommandLine.DISK_ID)
                    .put("snapshot-file", next.toString()).put("format", "qcow2"));
        } catch (QmpException e) {
            throw new TransferException("VM '" + source.name() + "': cannot freeze its disk " + current + " at the cut: " + e.getMessage(), e);
        }
        source.diskMovedTo(next);
        return current;
    }
}
