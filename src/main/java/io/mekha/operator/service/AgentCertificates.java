package io.mekha.operator.service;

import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequest;
import io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequestCondition;
import io.fabric8.kubernetes.api.model.certificates.v1.CertificateSigningRequestConditionBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.mekha.tls.CertificateAuthority;
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
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLSocketFactory;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.jboss.logging.Logger;

/**
 * The operator's side of the agent API's mutual TLS. It keeps the CA (a Secret only the operator reads, made on first
 * start), publishes the CA's certificate for the agents (a ConfigMap), signs the agents' CertificateSigningRequests as
 * the signer {@code mekha.io/agent}, and holds its own client certificate. A request is approved only if the API
 * server recorded it as made by the agent's ServiceAccount with a token bound to a running agent pod (the pod's name
 * and UID in {@code spec.extra}) and that pod runs on the node the request names; anything else is denied with the
 * reason. Clients for one node's agent trust only a certificate that names that node's agent.
 */
public final class AgentCertificates implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(AgentCertificates.class);
    public static final String CA_SECRET = "mekha-agent-ca";
    static final String POD_NAME = "authentication.kubernetes.io/pod-name";
    static final String POD_UID = "authentication.kubernetes.io/pod-uid";
    static final String NODE_NAME = "authentication.kubernetes.io/node-name";
    /** The longest serving certificate issued; an agent renews at two thirds of it. */
    static final Duration AGENT_LIFETIME = Duration.ofDays(7);
    static final Duration OPERATOR_LIFETIME = Duration.ofDays(1);
    /** What an agent's certificate may be for: serving the operator, and calling a partner agent with a level-0 copy. */
    private static final Set<String> AGENT_USAGES = Set.of("digital signature", "key encipherment", "server auth", "client auth");

    /** A decision on one request: the certificate to issue (PEM) or why it is denied. */
    public record Decision(String certificatePem, String denial) {}

    private final KubernetesClient client;
    private final String namespace;
    private final String agentUser;
    private final Map<String, String> agentLabels;
    private final Clock clock;
    private final CertificateAuthority ca;
    private final RenewableIdentity identity;
    private final Map<String, SSLSocketFactory> perNode = new ConcurrentHashMap<>();
    private volatile SharedIndexInformer<CertificateSigningRequest> informer;

    /**
     * @param namespace the agents' (and operator's) namespace: the CA's Secret and ConfigMap, the agents' pods
     * @param agentServiceAccount the agents' ServiceAccount there: the only identity whose requests are signed
     */
    public AgentCertificates(KubernetesClient client, String namespace, String agentServiceAccount, Map<String, String> agentLabels, Clock clock) {
        this.client = client;
        this.namespace = namespace;
        this.agentUser = "system:serviceaccount:" + namespace + ":" + agentServiceAccount;
        this.agentLabels = Map.copyOf(agentLabels);
        this.clock = clock;
        this.ca = loadOrCreateCa();
        publishCa();
        this.identity = clientIdentity();
    }

    private CertificateAuthority loadOrCreateCa() {
        for (int attempt = 0; attempt < 3; attempt++) {
            Secret secret = client.secrets().inNamespace(namespace).withName(CA_SECRET).get();
            if (secret != null) {
                try {
                    Map<String, String> data = secret.getData();
                    return CertificateAuthority.load(decode(data.get("tls.crt")), decode(data.get("tls.key")), clock);
                } catch (java.io.IOException | CertificateException | RuntimeException e) {
                    throw new IllegalStateException("Secret " + namespace + "/" + CA_SECRET + " does not hold the agent API's CA (tls.crt, tls.key): "
                            + e.getMessage() + "; delete it to have the operator make a new CA (every agent then asks for a new certificate when restarted)", e);
                }
            }
            CertificateAuthority created = CertificateAuthority.create("mekha-agent-ca", clock);
            try {
                client.secrets().inNamespace(namespace).resource(new SecretBuilder().withNewMetadata().withName(CA_SECRET).withNamespace(namespace)
                        .addToLabels("app.kubernetes.io/part-of", "mekha").endMetadata().withType("kubernetes.io/tls")
                        .addToData("tls.crt", encode(created.certificatePem())).addToData("tls.key", encode(created.keyPem())).build()).create();
                LOG.infof("made the agent API's CA (Secret %s/%s)", namespace, CA_SECRET);
                return created;
            } catch (KubernetesClientException e) {
                if (e.getCode() != 409) {
                    throw new IllegalStateException("cannot store the agent API's CA in Secret " + namespace + "/" + CA_SECRET + ": " + e.getMessage(), e);
                }
                // another operator replica made it first: take that one
            }
        }
        throw new IllegalStateException("Secret " + namespace + "/" + CA_SECRET + " keeps changing; is another operator replacing it?");
    }

    private void publishCa() {
        var map = new ConfigMapBuilder().withNewMetadata().withName(CA_SECRET)
                .withNamespace(namespace).addToLabels("app.kubernetes.io/part-of", "mekha").endMetadata()
                .addToData("ca.crt", ca.certificatePem()).build();
        var existing = client.configMaps().inNamespace(namespace).withName(CA_SECRET).get();
        if (existing == null) {
            client.configMaps().inNamespace(namespace).resource(map).create();
        } else if (existing.getData() == null || !ca.certificatePem().equals(existing.getData().get("ca.crt"))) {
            client.configMaps().inNamespace(namespace).resource(map).update();
        }
    }

    private RenewableIdentity clientIdentity() {
        KeyPair keys = KeyPairs.ec();
        return new RenewableIdentity(keys.getPrivate(), ca.issue(keys.getPublic(), TlsNames.OPERATOR, CertificateAuthority.Purpose.CLIENT,
                OPERATOR_LIFETIME));
    }

    public X509Certificate caCertificate() {
        return ca.certificate();
    }

    /** TLS for calls to the agent on {@code node}: the operator's client certificate, and trust in that node's agent alone. */
    public SSLSocketFactory forNode(String node) {
        if (!clock.instant().isBefore(identity.renewAt())) {
            synchronized (identity) {
                if (!clock.instant().isBefore(identity.renewAt())) {
                    KeyPair keys = KeyPairs.ec();
                    identity.renew(keys.getPrivate(), ca.issue(keys.getPublic(), TlsNames.OPERATOR, CertificateAuthority.Purpose.CLIENT,
                            OPERATOR_LIFETIME));
                }
            }
        }
        return perNode.computeIfAbsent(node, n -> TlsContexts.of(identity, PeerTrust.agentOf(ca.certificate(), n)).getSocketFactory());
    }

    /** Starts signing: every pending request for {@code mekha.io/agent}, now and as they come. */
    public AgentCertificates start() {
        informer = client.certificates().v1().certificateSigningRequests().inform(new ResourceEventHandler<>() {
            @Override
            public void onAdd(CertificateSigningRequest csr) {
                handle(csr);
            }

            @Override
            public void onUpdate(CertificateSigningRequest old, CertificateSigningRequest csr) {
                handle(csr);
            }

            @Override
            public void onDelete(CertificateSigningRequest csr, boolean unknownFinalState) {
            }
        });
        return this;
    }

    /** Approves and issues, or denies, one request, if it is for this signer and not decided yet. */
    public void handle(CertificateSigningRequest csr) {
        if (csr.getSpec() == null || !TlsNames.AGENT_SIGNER.equals(csr.getSpec().getSignerName()) || decided(csr)) {
            return;
        }
        String name = csr.getMetadata().getName();
        if (csr.getSpec().getUsername() == null) {
            return; // not yet authenticated by the API server (it fills the requester in before anyone sees the request)
        }
        try {
            var resource = client.certificates().v1().certificateSigningRequests().withName(name);
            // events can be older than the request: the one that says "approved" arrives after the certificate was issued
            csr = resource.get();
            if (csr == null || decided(csr)) {
                return;
            }
            Decision decision = decide(csr);
            if (decision.denial() != null) {
                LOG.warnf("denied CertificateSigningRequest %s: %s", name, decision.denial());
                resource.deny(condition("Denied", "MekhaAgentIdentity", decision.denial()));
                return;
            }
            if (!approved(csr)) {
                resource.approve(condition("Approved", "MekhaAgentIdentity", "requested by the Mekha agent's pod on its own node"));
            }
            CertificateSigningRequest approved = resource.get();
            approved.getStatus().setCertificate(Base64.getEncoder().encodeToString(decision.certificatePem().getBytes(StandardCharsets.US_ASCII)));
            client.certificates().v1().certificateSigningRequests().resource(approved).updateStatus();
            LOG.infof("issued the certificate of CertificateSigningRequest %s", name);
        } catch (KubernetesClientException e) {
            LOG.warnf("cannot decide CertificateSigningRequest %s now: %s", name, e.getMessage());
        }
    }

    /** What to do with {@code csr}: pure, from the request and the cluster's pods. */
    public Decision decide(CertificateSigningRequest csr) {
        var spec = csr.getSpec();
        if (!agentUser.equals(spec.getUsername())) {
            return deny("it was made by " + spec.getUsername() + ", not by the Mekha agent's ServiceAccount (" + agentUser + ")");
        }
        if (spec.getUsages() != null && !AGENT_USAGES.containsAll(spec.getUsages())) {
            return deny("it asks for usages " + spec.getUsages() + "; an agent's certificate is only for " + AGENT_USAGES);
        }
        PKCS10CertificationRequest request;
        try {
            request = Pem.certificationRequest(new String(Base64.getDecoder().decode(spec.getRequest()), StandardCharsets.US_ASCII));
        } catch (java.io.IOException | RuntimeException e) {
            return deny("spec.request is not a PEM certificate request: " + e.getMessage());
        }
        String node;
        try {
            node = TlsNames.nodeOf(CertificateAuthority.requestedName(request));
        } catch (CertificateException e) {
            return deny(e.getMessage());
        }
        if (node == null) {
            return deny("it asks for '" + request.getSubject() + "'; an agent asks for CN=mekha-agent:<its node>");
        }
        Map<String, List<String>> extra = spec.getExtra() == null ? Map.of() : spec.getExtra();
        String podName = single(extra.get(POD_NAME));
        String podUid = single(extra.get(POD_UID));
        if (podName == null || podUid == null) {
            return deny("it was not made with a token bound to a pod (spec.extra has no " + POD_NAME + " and " + POD_UID
                    + "): the agent asks with its pod's projected ServiceAccount token");
        }
        String tokenNode = single(extra.get(NODE_NAME));
        if (tokenNode != null && !tokenNode.equals(node)) {
            return deny("it asks for node " + node + " from a pod on node " + tokenNode);
        }
        Pod pod = client.pods().inNamespace(namespace).withName(podName).get();
        if (pod == null || !podUid.equals(pod.getMetadata().getUid())) {
            return deny("the pod it was made from (" + namespace + "/" + podName + ", uid " + podUid + ") does not exist (any more)");
        }
        Map<String, String> labels = pod.getMetadata().getLabels() == null ? Map.of() : pod.getMetadata().getLabels();
        if (!labels.entrySet().containsAll(agentLabels.entrySet())) {
            return deny("the pod it was made from (" + namespace + "/" + podName + ") is not a Mekha agent's (labels " + agentLabels + ")");
        }
        if (pod.getSpec() == null || !node.equals(pod.getSpec().getNodeName())) {
            return deny("it asks for node " + node + ", but its pod " + namespace + "/" + podName + " runs on node "
                    + (pod.getSpec() == null ? null : pod.getSpec().getNodeName()));
        }
        Duration lifetime = spec.getExpirationSeconds() == null ? AGENT_LIFETIME
                : Duration.ofSeconds(Math.max(600, Math.min(spec.getExpirationSeconds(), AGENT_LIFETIME.toSeconds())));
        try {
            return new Decision(Pem.write(ca.issue(request, TlsNames.agent(node), CertificateAuthority.Purpose.AGENT, lifetime)), null);
        } catch (CertificateException e) {
            return deny(e.getMessage());
        }
    }

    private static Decision deny(String why) {
        return new Decision(null, why);
    }

    private static String single(List<String> values) {
        return values == null || values.size() != 1 ? null : values.get(0);
    }

    private static boolean decided(CertificateSigningRequest csr) {
        if (csr.getStatus() == null) {
            return false;
        }
        if (csr.getStatus().getCertificate() != null && !csr.getStatus().getCertificate().isEmpty()) {
            return true;
        }
        return csr.getStatus().getConditions() != null && csr.getStatus().getConditions().stream()
                .anyMatch(c -> ("Denied".equals(c.getType()) || "Failed".equals(c.getType())) && !"False".equals(c.getStatus()));
    }

    private static boolean approved(CertificateSigningRequest csr) {
        return csr.getStatus() != null && csr.getStatus().getConditions() != null && csr.getStatus().getConditions().stream()
                .anyMatch(c -> "Approved".equals(c.getType()) && !"False".equals(c.getStatus()));
    }

    private CertificateSigningRequestCondition condition(String type, String reason, String message) {
        return new CertificateSigningRequestConditionBuilder().withType(type).withStatus("True").withReason(reason).withMessage(message)
                .withLastUpdateTime(clock.instant().toString()).build();
    }

    private static String encode(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.US_ASCII));
    }

    private static String decode(String base64) {
        if (base64 == null) {
            throw new IllegalArgumentException("a key is missing");
        }
        return new String(Base64.getDecoder().decode(base64), StandardCharsets.US_ASCII);
    }

    @Override
    public void close() {
        if (informer != null) {
            informer.close();
        }
    }
}
