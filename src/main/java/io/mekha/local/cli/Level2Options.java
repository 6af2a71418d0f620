package io.mekha.local.cli;

import io.mekha.local.InvalidSpecException;
import io.mekha.storage.StorageTarget;
import java.net.URI;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Where level 2 (shared storage) is: a directory or an S3-compatible bucket. */
final class Level2Options {

    @Option(names = "--level2", paramLabel = "DIR|s3://BUCKET[/PREFIX]",
            description = "shared storage for level 2: a directory every node mounts, or an S3 bucket (credentials from"
                    + " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else the AWS default chain)")
    String level2;

    @Option(names = "--s3-endpoint", description = "an S3-compatible service's URL (default: AWS); addresses buckets by path")
    URI endpoint;

    @Option(names = "--s3-region", defaultValue = "us-east-1", description = "the bucket's region (default: ${DEFAULT-VALUE})")
    String region;

    /** The target named on the command line, or null. */
    StorageTarget target() throws InvalidSpecException {
        if (level2 == null || level2.isBlank()) {
            return null;
        }
        StorageTarget target;
        if (level2.startsWith("s3://")) {
            String rest = level2.substring("s3://".length());
            int slash = rest.indexOf('/');
            String bucket = slash < 0 ? rest : rest.substring(0, slash);
            String prefix = slash < 0 ? "" : rest.substring(slash + 1);
            target = withCredentials(new StorageTarget.S3(endpoint, region, bucket, prefix, null, null, endpoint != null));
        } else {
            target = new StorageTarget.Filesystem(Path.of(level2).toAbsolutePath());
        }
        try {
            target.validate();
        } catch (IllegalArgumentException e) {
            throw new InvalidSpecException("--level2: " + e.getMessage());
        }
        return target;
    }

    /** Fills an S3 target's keys from the environment (they are never written to Mekha's state). */
    static StorageTarget withCredentials(StorageTarget target) throws InvalidSpecException {
        if (!(target instanceof StorageTarget.S3 s3)) {
            return target;
        }
        String key = System.getenv("AWS_ACCESS_KEY_ID");
        String secret = System.getenv("AWS_SECRET_ACCESS_KEY");
        if ((key == null) != (secret == null)) {
            throw new InvalidSpecException("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither");
        }
        return new StorageTarget.S3(s3.endpoint(), s3.region(), s3.bucket(), s3.prefix(), key, secret, s3.pathStyle(), s3.timeout());
    }

    /** The same target without secrets, for saving. */
    static StorageTarget withoutCredentials(StorageTarget target) {
        if (target instanceof StorageTarget.S3 s3) {
            return new StorageTarget.S3(s3.endpoint(), s3.region(), s3.bucket(), s3.prefix(), null, null, s3.pathStyle(), s3.timeout());
        }
        return target;
    }
}
