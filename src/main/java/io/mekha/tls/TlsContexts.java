package io.mekha.tls;

import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import javax.net.ssl.SSLContext;

/** TLS 1.3 contexts from this end's identity and its trust in the peer. */
public final class TlsContexts {
    public static final String[] PROTOCOLS = {"TLSv1.3"};

    private TlsContexts() {}

    public static SSLContext of(RenewableIdentity identity, PeerTrust trust) {
        try {
            SSLContext context = SSLContext.getInstance("TLSv1.3");
            context.init(new javax.net.ssl.KeyManager[] {identity}, new javax.net.ssl.TrustManager[] {trust}, new SecureRandom());
            return context;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("this JVM has no TLS 1.3", e);
        }
    }
}
