package io.mekha.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.ValidationRule;
import java.util.List;

/** Where a checkpoint goes after memory, and what happens to the memory copy. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(value = "!has(self.levels) || !('L2' in self.levels) || has(self.level2)",
        message = "levels include L2: set storage.level2.location (a CheckpointStorageLocation)")
public class StorageSpec {
    @JsonPropertyDescription("Levels to flush to beyond memory (L0 always holds the checkpoint first): L1 node-local disk, L2 shared storage.")
    @io.fabric8.generator.annotation.Size(max = 2)
    @ValidationRule(value = MekhaApi.UNIQUE_RULE, message = "a level is named twice: name each of L1 and L2 at most once")
    public List<LevelName> levels;

    @JsonPropertyDescription("Where the memory copy (L0) of each VM lives: on its own node, on a partner node, or both.")
    public Level0Spec level0;

    @JsonPropertyDescription("The shared level-2 target: a CheckpointStorageLocation an admin defined.")
    public Level2Target level2;

    @JsonPropertyDescription("Compression of stored streams: none or zstd.")
    @io.fabric8.generator.annotation.Pattern("^(none|zstd)$")
    public String compression;

    @JsonPropertyDescription("Release the memory copy once the checkpoint is durable (default false: keep it for the fastest restart).")
    public Boolean releaseMemoryWhenDurable;

    @JsonPropertyDescription("Concurrent writes to the shared target (default 1).")
    @io.fabric8.generator.annotation.Min(1)
    @io.fabric8.generator.annotation.Max(64)
    public Integer level2Writers;
}
