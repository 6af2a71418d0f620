package io.mekha.tls;

import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * This end's certificate and key, swapped in place when renewed: connections made after {@link #renew} present the
 * new certificate, the ones open go on with theirs, and nothing has to be restarted.
 */
public final class RenewableIdentity extends X509ExtendedKeyManager {
    private static final String ALIAS = "mekha";

    private record Current(PrivateKey key, X509Certificate[] chain) {}

    private volatile Current current;

    public RenewableIdentity(PrivateKey key, X509Certificate certificate) {
        renew(key, certificate);
    }

    public void renew(PrivateKey key, X509Certificate certificate) {
        current = new Current(key, new X509Certificate[] {certificate});
    }

    public X509Certificate certificate() {
        return current.chain()[0];
    }

    /** When to renew: two thirds into the certificate's life. */
    public Instant renewAt() {
        Instant from = certificate().getNotBefore().toInstant();
        Instant to = certificate().getNotAfter().toInstant();
        return from.plus(Duration.between(from, to).multipliedBy(2).dividedBy(3));
    }

    private String alias(String[] keyTypes) {
        String algorithm = current.key().getAlgorithm();
        if (keyTypes == null) {
            return ALIAS;
        }
        for (String type : keyTypes) {
            if (type.equalsIgnoreCase(algorithm) || (algorithm.equals("EC") && type.startsWith("EC"))) {
                return ALIAS;
            }
        }
        return null;
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
        return alias(new String[] {keyType}) == null ? null : new String[] {ALIAS};
    }

    @Override
    public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
        return alias(keyTypes);
    }

    @Override
    public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
        return alias(keyTypes);
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
        return getClientAliases(keyType, issuers);
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return alias(new String[] {keyType});
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return alias(new String[] {keyType});
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
        return ALIAS.equals(alias) ? current.chain().clone() : null;
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
        return ALIAS.equals(alias) ? current.key() : null;
    }
}
