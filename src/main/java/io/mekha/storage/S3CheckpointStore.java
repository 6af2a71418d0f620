package io.mekha.storage;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.NoSuchFileException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.CommonPrefix;
import software.amazon.awssdk.services.s3.model.CompletedMultipartUpload;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Checkpoints in an S3-compatible bucket: {@code <prefix>/<vc>/<checkpoint>/<file>}. A stream is a
 * multipart upload of {@value #PART_BYTES}-byte parts (one part buffered per writer), invisible
 * until completed; the manifest is a single PUT, atomic by S3's rules.
 */
public final class S3CheckpointStore implements CheckpointStore {
    static final int PART_BYTES = 8 << 20;

    private final StorageTarget.S3 target;
    private final S3Client s3;
    private final String prefix;

    public S3CheckpointStore(StorageTarget.S3 target) {
        this.target = target;
        String p = target.prefix() == null ? "" : target.prefix().replaceAll("^/+|/+$", "");
        this.prefix = p.isEmpty() ? "" : p + "/";
        // every call bounded, retries included: a store that stops answering mid-upload fails the flush within
        // the call timeout (each attempt gets half of it, so one retry fits) and nothing is published
        Duration call = target.callTimeout();
        Duration attempt = call.dividedBy(2);
        S3ClientBuilder builder = S3Client.builder()
                .httpClientBuilder(UrlConnectionHttpClient.builder().connectionTimeout(min(Duration.ofSeconds(10), attempt))
                        .socketTimeout(attempt))
                .overrideConfiguration(c -> c.apiCallTimeout(call).apiCallAttemptTimeout(attempt))
                .region(Region.of(target.region()))
                .forcePathStyle(target.pathStyle())
                // checksums only where S3 requires them: most S3-compatible servers reject the SDK's newer trailing checksums;
                // Mekha checks its own SHA-256 of every stream
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .credentialsProvider(target.accessKeyId() == null ? DefaultCredentialsProvider.builder().build()
                        : StaticCredentialsProvider.create(AwsBasicCredentials.create(target.accessKeyId(), target.secretAccessKey())));
        if (target.endpoint() != null) {
            builder.endpointOverride(target.endpoint());
        }
        this.s3 = builder.build();
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }

    @Override
    public StorageTarget target() {
        return target;
    }

    @Override
    public String locate(String vc, String checkpoint, String file) {
        return describe(key(vc, checkpoint, file)) + (target.endpoint() == null ? "" : " at " + target.endpoint());
    }

    private String dir(String vc, String checkpoint) {
        return prefix + CheckpointStore.requireName("virtual cluster", vc) + "/" + CheckpointStore.requireName("checkpoint", checkpoint) + "/";
    }

    private String key(String vc, String checkpoint, String file) {
        return dir(vc, checkpoint) + CheckpointStore.requireName("file", file);
    }

    @Override
    public StreamSink create(String vc, String checkpoint, String file) throws IOException {
        String key = key(vc, checkpoint, file);
        try {
            String uploadId = s3.createMultipartUpload(b -> b.bucket(target.bucket()).key(key)).uploadId();
            return new MultipartSink(key, uploadId);
        } catch (SdkException e) {
            throw io("start uploading " + key, e);
        }
    }

    @Override
    public InputStream open(String vc, String checkpoint, String file) throws IOException {
        String key = key(vc, checkpoint, file);
        try {
            return s3.getObject(b -> b.bucket(target.bucket()).key(key));
        } catch (NoSuchKeyException e) {
            throw new NoSuchFileException(describe(key));
        } catch (SdkException e) {
            throw io("read " + key, e);
        }
    }

    @Override
    public void publishManifest(String vc, String checkpoint, byte[] json) throws IOException {
        String key = key(vc, checkpoint, CheckpointManifest.FILE);
        try {
            s3.putObject(b -> b.bucket(target.bucket()).key(key).contentType("application/json"), RequestBody.fromBytes(json));
        } catch (SdkException e) {
            throw io("publish " + key, e);
        }
    }

    @Override
    public Optional<byte[]> readManifest(String vc, String checkpoint) throws IOException {
        String key = key(vc, checkpoint, CheckpointManifest.FILE);
        try {
            return Optional.of(s3.getObjectAsBytes(b -> b.bucket(target.bucket()).key(key)).asByteArray());
        } catch (NoSuchKeyException e) {
            return Optional.empty();
        } catch (SdkException e) {
            throw io("read " + key, e);
        }
    }

    @Override
    public List<String> checkpoints(String vc) throws IOException {
        String vcPrefix = prefix + CheckpointStore.requireName("virtual cluster", vc) + "/";
        List<String> names = new ArrayList<>();
        try {
            for (ListObjectsV2Response page : s3.listObjectsV2Paginator(b -> b.bucket(target.bucket()).prefix(vcPrefix).delimiter("/"))) {
                for (CommonPrefix p : page.commonPrefixes()) {
                    names.add(p.prefix().substring(vcPrefix.length()).replaceAll("/$", ""));
                }
            }
        } catch (SdkException e) {
            throw io("list " + vcPrefix, e);
        }
        names.sort(null);
        return names;
    }

    @Override
    public void delete(String vc, String checkpoint) throws IOException {
        String dir = dir(vc, checkpoint);
        try {
            s3.deleteObject(b -> b.bucket(target.bucket()).key(dir + CheckpointManifest.FILE));
            for (ListObjectsV2Response page : s3.listObjectsV2Paginator(b -> b.bucket(target.bucket()).prefix(dir))) {
                for (S3Object o : page.contents()) {
                    s3.deleteObject(b -> b.bucket(target.bucket()).key(o.key()));
                }
            }
            s3.listMultipartUploads(b -> b.bucket(target.bucket()).prefix(dir)).uploads().forEach(u -> abort(u.key(), u.uploadId()));
        } catch (SdkException e) {
            throw io("delete " + dir, e);
        }
    }

    /**
     * Aborts a multipart upload. One that is gone already (404) counts as aborted: between our list and
     * our abort another party may end it, such as the writer's own abort that a stalled network
     * delivered late, or a bucket lifecycle rule.
     */
    void abort(String key, String uploadId) {
        try {
            s3.abortMultipartUpload(b -> b.bucket(target.bucket()).key(key).uploadId(uploadId));
        } catch (S3Exception e) {
            if (e.statusCode() != 404) {
                throw e;
            }
        }
    }

    @Override
    public void close() {
        s3.close();
    }

    private String describe(String key) {
        return "s3://" + target.bucket() + "/" + key;
    }

    private IOException io(String what, SdkException e) {
        return new IOException(target.describe() + ": cannot " + what + ": " + e.getMessage(), e);
    }

    private final class MultipartSink implements StreamSink {
        private final String key;
        private final String uploadId;
        private final List<CompletedPart> parts = new ArrayList<>();
        private final byte[] buffer = new byte[PART_BYTES];
        private int filled;
        private boolean finished;
        private final OutputStream out = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                while (len > 0) {
                    int n = Math.min(len, buffer.length - filled);
                    System.arraycopy(b, off, buffer, filled, n);
                    filled += n;
                    off += n;
                    len -= n;
                    if (filled == buffer.length) {
                        uploadPart();
                    }
                }
            }
        };

        MultipartSink(String key, String uploadId) {
            this.key = key;
            this.uploadId = uploadId;
        }

        private void uploadPart() throws IOException {
            int number = parts.size() + 1;
            try {
                String etag = s3.uploadPart(b -> b.bucket(target.bucket()).key(key).uploadId(uploadId).partNumber(number)
                        .contentLength((long) filled), RequestBody.fromBytes(java.util.Arrays.copyOf(buffer, filled))).eTag();
                parts.add(CompletedPart.builder().partNumber(number).eTag(etag).build());
                filled = 0;
            } catch (SdkException e) {
                throw io("upload part " + number + " of " + key, e);
            }
        }

        @Override
        public OutputStream stream() {
            return out;
        }

        @Override
        public void commit() throws IOException {
            if (filled > 0 || parts.isEmpty()) {
                uploadPart();
            }
            try {
                s3.completeMultipartUpload(b -> b.bucket(target.bucket()).key(key).uploadId(uploadId)
                        .multipartUpload(CompletedMultipartUpload.builder().parts(parts).build()));
                finished = true;
            } catch (SdkException e) {
                throw io("complete the upload of " + key, e);
            }
        }

        @Override
        public void close() throws IOException {
            if (!finished) {
                finished = true;
                try {
                    abort(key, uploadId);
                } catch (SdkException e) {
                    throw io("abort the upload of " + key, e);
                }
            }
        }
    }
}
