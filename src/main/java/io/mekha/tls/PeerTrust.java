package io.mekha.tls;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.function.Predicate;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * Trusts a peer only if its certificate chains to the one CA of the agent API (PKIX: signature, validity, key usage)
 * and names who this end expects: the operator (an agent's check of its callers) or the agent of the one node it
 * called (the operator's check). The name is checked here, in every handshake, rather than by hostname rules: agents
 * are reached at pod IPs, and no certificate names one.
 */
public final class PeerTrust extends X509ExtendedTrustManager {
    private final X509TrustManager pkix;
    private final String expected;
    private final Predicate<String> accepts;

    private PeerTrust(X509Certificate ca, String expected, Predicate<String> accepts) {
        this.pkix = pkix(ca);
        this.expected = expected;
        this.accepts = accepts;
    }

    /** Trusts the server only if it is the agent of {@code node}. */
    public static PeerTrust agentOf(X509Certificate ca, String node) {
        String name = TlsNames.agent(node);
        return new PeerTrust(ca, name, name::equals);
    }

    /**
     * Trusts a client only if it is some node's agent: the partner-copy listener's check, where an agent hands another
     * node a level-0 copy. Which node may send which copy is decided after the handshake, from the name.
     */
    public static PeerTrust agents(X509Certificate ca) {
        return new PeerTrust(ca, TlsNames.agent("<node>"), name -> TlsNames.nodeOf(name) != null);
    }

    /** Trusts a client only if it is the operator. */
    public static PeerTrust operator(X509Certificate ca) {
        return new PeerTrust(ca, TlsNames.OPERATOR, TlsNames.OPERATOR::equals);
    }

    private static X509TrustManager pkix(X509Certificate ca) {
        try {
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            store.setCertificateEntry("mekha-agent-ca", ca);
            TrustManagerFactory factory = TrustManagerFactory.getInstance("PKIX");
            factory.init(store);
            for (TrustManager tm : factory.getTrustManagers()) {
                if (tm instanceof X509TrustManager x509) {
                    return x509;
                }
            }
            throw new IllegalStateException("no X.509 trust manager");
        } catch (GeneralSecurityException | java.io.IOException e) {
            throw new IllegalStateException("cannot trust the CA " + ca.getSubjectX500Principal(), e);
        }
    }

    private void check(X509Certificate[] chain) throws CertificateException {
        String name = chain == null || chain.length == 0 ? null : TlsNames.commonName(chain[0]);
        if (name == null || !accepts.test(name)) {
            throw new CertificateException("the peer's certificate names '" + (chain == null || chain.length == 0 ? "nothing"
                    : chain[0].getSubjectX500Principal().getName()) + "', not CN=" + expected);
        }
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        pkix.checkServerTrusted(chain, authType);
        check(chain);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        pkix.checkClientTrusted(chain, authType);
        check(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        checkServerTrusted(chain, authType);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        checkServerTrusted(chain, authType);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        checkClientTrusted(chain, authType);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        checkClientTrusted(chain, authType);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return pkix.getAcceptedIssuers();
    }
}
