package io.mekha.agent.server;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequest;
import io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequestBuilder;
import io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequestCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.mekha.tls.KeyPairs;
import io.mekha.tls.Pem;
import io.mekha.tls.PeerTrust;
import io.mekha.tls.RenewableIdentity;
import io.mekha.tls.TlsContexts;
import io.mekha.tls.TlsNames;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import org.jboss.logging.Logger;

/**
 * The agent's serving certificate, the Kubernetes way: the agent makes its key (it never leaves the process), asks
 * for {@code CN=mekha-agent:<node>} with a CertificateSigningRequest to the signer {@code mekha.io/agent}, and waits
 * until the operator, that signer, approves and issues it or denies it (the API server records who asked: the
 * operator checks that it is the agent's ServiceAccount, from the agent's pod on that node). The CA it trusts for
 * callers is the one the operator publishes in the ConfigMap {@code mekha-agent-ca}. Renewed the same way two thirds
 * into its life, in place.
 */
public final class AgentCertificate implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(AgentCertificate.class);
    public static final String CA_CONFIG_MAP = "mekha-agent-ca";
    public static final String CA_KEY = "ca.crt";
    /** What the agent asks for; the signer may give less. */
    static final Duration LIFETIME = Duration.ofDays(7);
    private static final Duration RETRY = Duration.ofMinutes(1);

    private final KubernetesClient client;
    private final String node;
    private final Clock clock;
    private final X509Certificate ca;
    private final RenewableIdentity identity;
    private final ScheduledExecutorService renewals = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "agent-certificate-renewal");
        t.setDaemon(true);
        return t;
    });

    private AgentCertificate(KubernetesClient client, String node, Clock clock, X509Certificate ca, RenewableIdentity identity) {
        this.client = client;
        this.node = node;
        this.clock = clock;
        this.ca = ca;
        this.identity = identity;
    }

    /**
     * Gets the certificate of the agent on {@code node} (blocking up to {@code wait}: the operator must be up to sign it)
     * and keeps it renewed.
     *
     * @param namespace where the operator publishes its CA
     */
    public static AgentCertificate obtain(KubernetesClient client, String namespace, String node, Clock clock, Duration wait)
            throws InterruptedException {
        Instant deadline = clock.instant().plus(wait);
        X509Certificate ca = trustedCa(client, namespace, deadline, clock);
        Issued first = request(client, node, ca, deadline, clock);
        AgentCertificate certificate = new AgentCertificate(client, node, clock, ca, new RenewableIdentity(first.keys().getPrivate(),
                first.certificate()));
        certificate.scheduleRenewal();
        LOG.infof("serving as %s, certificate valid until %s", TlsNames.agent(node), first.certificate().getNotAfter().toInstant());
        return certificate;
    }

    /** The context the agent serves with: its certificate, and trust in the operator's client certificate alone. */
    public SSLContext sslContext() {
        return TlsContexts.of(identity, PeerTrust.operator(ca));
    }

    /**
     * The context the partner-copy listener serves with ({@link PartnerStreamServer}): this agent's certificate, and trust
     * in other nodes' agents alone (never the operator's, never a tenant's).
     */
    public SSLContext partnerServerContext() {
        return TlsContexts.of(identity, PeerTrust.agents(ca));
    }

    /** TLS for handing a level-0 copy to the agent of {@code node}: this agent's certificate, and trust in that node's agent alone. */
    public javax.net.ssl.SSLSocketFactory partnerClient(String node) {
        return TlsContexts.of(identity, PeerTrust.agentOf(ca, node)).getSocketFactory();
    }

    public X509Certificate certificate() {
        return identity.certificate();
    }

    private record Issued(KeyPair keys, X509Certificate certificate) {}

    private static X509Certificate trustedCa(KubernetesClient client, String namespace, Instant deadline, Clock clock)
            throws InterruptedException {
        String problem;
        do {
            try {
                ConfigMap map = client.configMaps().inNamespace(namespace).withName(CA_CONFIG_MAP).get();
                String pem = map == null || map.getData() == null ? null : map.getData().get(CA_KEY);
                if (pem != null) {
                    return Pem.certificates(pem).get(0);
                }
                problem = "ConfigMap " + namespace + "/" + CA_CONFIG_MAP + " with key " + CA_KEY + " does not exist yet (the operator makes it)";
            } catch (KubernetesClientException | CertificateException | IllegalArgumentException e) {
                problem = "cannot read the operator's CA from ConfigMap " + namespace + "/" + CA_CONFIG_MAP + ": " + e.getMessage();
            }
            Thread.sleep(500);
        } while (clock.instant().isBefore(deadline));
        throw new IllegalStateException(problem + "; is the Mekha operator running?");
    }

    private static Issued request(KubernetesClient client, String node, X509Certificate ca, Instant deadline, Clock clock)
            throws InterruptedException {
        KeyPair keys = KeyPairs.ec();
        String pem = Pem.write(KeyPairs.request(keys, TlsNames.agent(node)));
        String name = csrName(node);
        client.certificates().v1().certificateSigningRequests().resource(new CertificateSigningRequestBuilder()
                .withNewMetadata().withName(name).addToLabels("app.kubernetes.io/name", "mekha-agent").endMetadata()
                .withNewSpec().withSignerName(TlsNames.AGENT_SIGNER).withUsages("digital signature", "server auth", "client auth")
                .withExpirationSeconds((int) LIFETIME.toSeconds())
                .withRequest(Base64.getEncoder().encodeToString(pem.getBytes(StandardCharsets.US_ASCII))).endSpec()
                .build()).create();
        LOG.infof("asked for the certificate of %s (CertificateSigningRequest %s, signer %s)", TlsNames.agent(node), name, TlsNames.AGENT_SIGNER);
        do {
            CertificateSigningRequest csr = client.certificates().v1().certificateSigningRequests().withName(name).get();
            if (csr == null) {
                throw new IllegalStateException("CertificateSigningRequest " + name + " was deleted before it was signed");
            }
            if (csr.getStatus() != null && csr.getStatus().getConditions() != null) {
                for (CertificateSigningRequestCondition c : csr.getStatus().getConditions()) {
                    if (("Denied".equals(c.getType()) || "Failed".equals(c.getType())) && !"False".equals(c.getStatus())) {
                        throw new IllegalStateException("CertificateSigningRequest " + name + " for " + TlsNames.agent(node) + " was "
                                + c.getType().toLowerCase(java.util.Locale.ROOT) + ": " + c.getReason() + ": " + c.getMessage());
                    }
                }
            }
            String issued = csr.getStatus() == null ? null : csr.getStatus().getCertificate();
            if (issued != null && !issued.isEmpty()) {
                return new Issued(keys, check(issued, keys, node, ca, name));
            }
            Thread.sleep(250);
        } while (clock.instant().isBefore(deadline));
        throw new IllegalStateException("CertificateSigningRequest " + name + " was not signed in time; the Mekha operator signs " + TlsNames.AGENT_SIGNER
                + " requests: is it running?");
    }

    /** The issued certificate, taken only if it certifies this key, names this node's agent and comes from the CA. */
    private static X509Certificate check(String issued, KeyPair keys, String node, X509Certificate ca, String name) {
        try {
            X509Certificate cert = Pem.certificates(new String(Base64.getDecoder().decode(issued), StandardCharsets.US_ASCII)).get(0);
            if (!cert.getPublicKey().equals(keys.getPublic())) {
                throw new CertificateException("it certifies another key");
            }
            if (!TlsNames.agent(node).equals(TlsNames.commonName(cert))) {
                throw new CertificateException("it names " + cert.getSubjectX500Principal().getName());
            }
            cert.verify(ca.getPublicKey());
            cert.checkValidity();
            return cert;
        } catch (java.security.GeneralSecurityException | IllegalArgumentException e) {
            throw new IllegalStateException("the certificate issued for CertificateSigningRequest " + name + " is not one to serve with: "
                    + e.getMessage(), e);
        }
    }

    private static String csrName(String node) {
        String suffix = Long.toString(System.nanoTime() & 0xffffffL, 36) + Integer.toString(new java.security.SecureRandom().nextInt(1 << 20), 36);
        String base = "mekha-agent-" + node.toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z0-9.-]", "-");
        return (base.length() > 230 ? base.substring(0, 230) : base) + "-" + suffix;
    }

    private void scheduleRenewal() {
        long delay = Math.max(0, Duration.between(clock.instant(), identity.renewAt()).toMillis());
        renewals.schedule(this::renew, delay, TimeUnit.MILLISECONDS);
    }

    private void renew() {
        try {
            Issued next = request(client, node, ca, clock.instant().plus(Duration.ofMinutes(10)), clock);
            identity.renew(next.keys().getPrivate(), next.certificate());
            LOG.infof("renewed the certificate of %s, valid until %s", TlsNames.agent(node), next.certificate().getNotAfter().toInstant());
            scheduleRenewal();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            LOG.errorf("cannot renew the certificate of %s (it ends %s): %s; trying again in %s", TlsNames.agent(node),
                    identity.certificate().getNotAfter().toInstant(), e.getMessage(), RETRY);
            renewals.schedule(this::renew, RETRY.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    @Override
    public void close() {
        renewals.shutdownNow();
    }
}
