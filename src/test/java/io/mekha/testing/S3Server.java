package io.mekha.testing;

import io.mekha.storage.StorageTarget;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * A real S3-compatible server on loopback for tests: S3Proxy over a local directory, with AWS
 * signature checks on, in a JVM of its own (its libraries clash with Quarkus's test stack).
 * Mekha talks to it with the AWS SDK exactly as it would to a cloud store.
 */
public final class S3Server implements AutoCloseable {
    public static final String ACCESS_KEY = "mekha-test";
    public static final String SECRET_KEY = "mekha-test-secret";
    private static final Path POM = Path.of("src/test/s3proxy/pom.xml").toAbsolutePath();
    private static final Path CLASSPATH = Path.of("target/s3proxy.classpath").toAbsolutePath();

    private final Process process;
    private final URI endpoint;

    public S3Server(Path dir) throws Exception {
        Files.createDirectories(dir.resolve("blobs"));
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        endpoint = URI.create("http://127.0.0.1:" + port);
        Path properties = dir.resolve("s3proxy.properties");
        Files.writeString(properties, String.join("\n",
                "s3proxy.endpoint=" + endpoint,
                "s3proxy.authorization=aws-v2-or-v4",
                "s3proxy.identity=" + ACCESS_KEY,
                "s3proxy.credential=" + SECRET_KEY,
                "jclouds.provider=filesystem",
                "jclouds.identity=identity",
                "jclouds.credential=credential",
                "jclouds.filesystem.basedir=" + dir.resolve("blobs")) + "\n");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        process = new ProcessBuilder(java, "-Xmx256m", "-cp", classpath(), "org.gaul.s3proxy.Main", "--properties", properties.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("s3proxy.log").toFile()).start();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                break;
            } catch (IOException e) {
                if (!process.isAlive() || System.nanoTime() > deadline) {
                    process.destroyForcibly();
                    throw new IllegalStateException("S3Proxy did not start; its log: " + Files.readString(dir.resolve("s3proxy.log")));
                }
                Thread.sleep(100);
            }
        }
    }

    /** S3Proxy's classpath, resolved by Maven once per build directory. */
    private static synchronized String classpath() throws Exception {
        if (!Files.exists(CLASSPATH)) {
            Process mvn = new ProcessBuilder("mvn", "-q", "-B", "-f", POM.toString(), "dependency:build-classpath",
                    "-Dmdep.outputFile=" + CLASSPATH).inheritIO().start();
            if (mvn.waitFor() != 0 || !Files.exists(CLASSPATH)) {
                throw new IllegalStateException("could not resolve S3Proxy's classpath with Maven (" + POM + ")");
            }
        }
        String deps = Files.readString(CLASSPATH).strip();
        String self = Path.of(System.getProperty("user.home"), ".m2/repository/org/gaul/s3proxy/2.6.0/s3proxy-2.6.0.jar").toString();
        return deps.contains("s3proxy-2.6.0.jar") ? deps : self + java.io.File.pathSeparator + deps;
    }

    /** A target in a new bucket of this server. */
    public StorageTarget.S3 bucket(String bucket, String prefix) {
        try (S3Client s3 = client()) {
            s3.createBucket(b -> b.bucket(bucket));
        }
        return new StorageTarget.S3(endpoint, "us-east-1", bucket, prefix, ACCESS_KEY, SECRET_KEY, true);
    }

    /** A plain SDK client of this server, for a test that plays another party acting on the bucket. */
    public S3Client client() {
        return S3Client.builder().httpClientBuilder(UrlConnectionHttpClient.builder()).region(Region.US_EAST_1)
                .endpointOverride(endpoint).forcePathStyle(true)
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY))).build();
    }

    public URI endpoint() {
        return endpoint;
    }

    @Override
    public void close() throws Exception {
        process.destroy();
        if (!process.waitFor(5, java.util.concurrent.TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
        }
    }

}
