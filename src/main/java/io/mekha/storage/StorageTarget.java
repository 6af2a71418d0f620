package io.mekha.storage;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.net.URI;
import java.nio.file.Path;

/**
 * A place stored checkpoints go: a directory (node-local for L1; for L2 a mount every node
 * shares, such as a ReadWriteMany PVC or NFS) or a bucket of an S3-compatible object store.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "kind")
@JsonSubTypes({
        @JsonSubTypes.Type(value = StorageTarget.Filesystem.class, name = "filesystem"),
        @JsonSubTypes.Type(value = StorageTarget.S3.class, name = "s3")})
public sealed interface StorageTarget {

    /** A short, secret-free description for messages and manifests. */
    String describe();

    /** Checks the fields; throws IllegalArgumentException saying what to fix. */
    void validate();

    /** A directory; checkpoints go to {@code <path>/<vc>/<checkpoint>/}. */
    record Filesystem(Path path) implements StorageTarget {
        @Override
        public String describe() {
            return "filesystem " + path;
        }

        @Override
        public void validate() {
            if (path == null || !path.isAbsolute()) {
                throw new IllegalArgumentException("a filesystem storage target needs an absolute 'path' (got " + path + ")");
            }
        }
    }

    /**
     * An S3-compatible bucket; checkpoints go to {@code <prefix>/<vc>/<checkpoint>/}.
     *
     * @param endpoint the service URL (null: AWS for {@code region})
     * @param pathStyle address the bucket in the path rather than the host name (most non-AWS servers need this)
     */
    /**
     * An S3-compatible bucket. {@code timeout}: the longest one call may take, the SDK's retries included
     * (null: {@link #DEFAULT_TIMEOUT}), so that a store that stops answering mid-upload fails the flush in
     * bounded time instead of holding it.
     */
    record S3(URI endpoint, String region, String bucket, String prefix, String accessKeyId, String secretAccessKey,
              boolean pathStyle, java.time.Duration timeout) implements StorageTarget {
        public static final java.time.Duration DEFAULT_TIMEOUT = java.time.Duration.ofMinutes(2);

        public S3(URI endpoint, String region, String bucket, String prefix, String accessKeyId, String secretAccessKey, boolean pathStyle) {
            this(endpoint, region, bucket, prefix, accessKeyId, secretAccessKey, pathStyle, null);
        }

        /** The bound of one call, retries included. */
        public java.time.Duration callTimeout() {
            return timeout == null ? DEFAULT_TIMEOUT : timeout;
        }

        public S3 withTimeout(java.time.Duration t) {
            return new S3(endpoint, region, bucket, prefix, accessKeyId, secretAccessKey, pathStyle, t);
        }

        @Override
        public String describe() {
            return "s3://" + bucket + "/" + (prefix == null ? "" : prefix) + (endpoint == null ? "" : " at " + endpoint);
        }

        @Override
        public void validate() {
            if (bucket == null || bucket.isBlank()) {
                throw new IllegalArgumentException("an s3 storage target needs a 'bucket'");
            }
            if (region == null || region.isBlank()) {
                throw new IllegalArgumentException("an s3 storage target needs a 'region' (any name, such as us-east-1, for non-AWS stores)");
            }
            if (timeout != null && (timeout.isNegative() || timeout.isZero() || timeout.compareTo(java.time.Duration.ofHours(1)) > 0)) {
                throw new IllegalArgumentException("an s3 storage target's 'timeout' must be above zero and at most 1h, not " + timeout);
            }
            if ((accessKeyId == null) != (secretAccessKey == null)) {
                throw new IllegalArgumentException("an s3 storage target needs both 'accessKeyId' and 'secretAccessKey', or neither"
                        + " (then the default AWS credential chain is used)");
            }
        }

        /** Never prints the secret. */
        @Override
        public String toString() {
            return "S3[" + describe() + ", accessKeyId=" + accessKeyId + "]";
        }
    }
}
