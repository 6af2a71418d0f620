package io.mekha.api.v1alpha1;

import io.mekha.model.TransferMode;

/** How VM state reaches the shadows (see docs/transfer-modes.md). */
public enum TransferModeName {
    MTD, StopAndCopy, BackgroundSnapshot;

    public TransferMode toMode() {
        return TransferMode.parse(name());
    }
}
