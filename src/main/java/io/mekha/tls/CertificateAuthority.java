package io.mekha.tls;

import java.io.IOException;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCSException;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;

/**
 * The operator's certificate authority for the agent API: one P-256 key, a self-signed CA certificate that may sign
 * only end-entity certificates (path length 0), and the certificates it issues: serving certificates for agents (from
 * their signing requests, keys they made themselves) and the operator's own client certificate. An issued
 * certificate carries only the request's one common name, its key and the purpose the CA gives it; nothing else a
 * request asks for (other names, extensions, a longer life) is copied.
 */
public final class CertificateAuthority {
    /** What an issued certificate may be used for. */
    public enum Purpose {
        SERVER(KeyPurposeId.id_kp_serverAuth),
        CLIENT(KeyPurposeId.id_kp_clientAuth),
        /** An agent's: it serves the operator, and calls a partner node's agent to hand it a level-0 copy. */
        AGENT(KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth);

        private final KeyPurposeId[] usages;

        Purpose(KeyPurposeId... usages) {
            this.usages = usages;
        }
    }

    static final Duration CA_LIFETIME = Duration.ofDays(3650);
    /** Issued certificates start a little in the past: nodes' clocks differ. */
    private static final Duration BACKDATE = Duration.ofMinutes(5);

    private final X509Certificate certificate;
    private final PrivateKey key;
    private final Clock clock;
    private final SecureRandom random = new SecureRandom();

    private CertificateAuthority(X509Certificate certificate, PrivateKey key, Clock clock) {
        this.certificate = certificate;
        this.key = key;
        this.clock = clock;
    }

    /** A new CA named {@code CN=<name>}. */
    public static CertificateAuthority create(String name, Clock clock) {
        KeyPair keys = KeyPairs.ec();
        Instant now = clock.instant();
        X500Principal subject = new X500Principal("CN=" + name);
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject, serial(new SecureRandom()),
                    Date.from(now.minus(BACKDATE)), Date.from(now.plus(CA_LIFETIME)), subject, keys.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(0))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                    .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
            return new CertificateAuthority(sign(builder, keys.getPrivate()), keys.getPrivate(), clock);
        } catch (GeneralSecurityException | CertIOException e) {
            throw new IllegalStateException("cannot make the CA certificate", e);
        }
    }

    /** The CA kept as PEM (a Secret's {@code tls.crt} and {@code tls.key}); refused unless the key is the certificate's and it is a CA. */
    public static CertificateAuthority load(String certificatePem, String keyPem, Clock clock) throws IOException, CertificateException {
        X509Certificate cert = Pem.certificates(certificatePem).get(0);
        PrivateKey key = Pem.privateKey(keyPem);
        if (cert.getBasicConstraints() < 0) {
            throw new CertificateException("the certificate " + cert.getSubjectX500Principal() + " is not a CA (no basicConstraints CA:true)");
        }
        if (!matches(key, cert.getPublicKey())) {
            throw new CertificateException("the private key is not the key of the CA certificate " + cert.getSubjectX500Principal());
        }
        return new CertificateAuthority(cert, key, clock);
    }

    public X509Certificate certificate() {
        return certificate;
    }

    public String certificatePem() {
        return Pem.write(certificate);
    }

    public String keyPem() {
        return Pem.write(key);
    }

    /**
     * Certifies the key of {@code request} for {@code lifetime} (cut to the CA's own end). Refused unless the request is
     * signed by the key it carries, names exactly {@code CN=<expectedName>}, and carries a P-256/P-384 or RSA ≥ 2048 key.
     */
    public X509Certificate issue(PKCS10CertificationRequest request, String expectedName, Purpose purpose, Duration lifetime)
            throws CertificateException {
        PublicKey publicKey;
        try {
            JcaPKCS10CertificationRequest jca = new JcaPKCS10CertificationRequest(request);
            publicKey = jca.getPublicKey();
            if (!request.isSignatureValid(new JcaContentVerifierProviderBuilder().build(publicKey))) {
                throw new CertificateException("the request is not signed by the key it carries");
            }
        } catch (GeneralSecurityException | OperatorCreationException | PKCSException e) {
            throw new CertificateException("the request cannot be read or verified: " + e.getMessage(), e);
        }
        String name = requestedName(request);
        if (!expectedName.equals(name)) {
            throw new CertificateException("the request asks for '" + request.getSubject() + "', not CN=" + expectedName);
        }
        checkKey(publicKey);
        return issue(publicKey, name, purpose, lifetime);
    }

    /** The one common name a request's subject consists of, or null if it is anything else. */
    public static String requestedName(PKCS10CertificationRequest request) throws CertificateException {
        try {
            return TlsNames.commonName(new X500Principal(request.getSubject().getEncoded()).getName());
        } catch (IOException | IllegalArgumentException e) {
            throw new CertificateException("the request's subject cannot be read: " + e.getMessage(), e);
        }
    }

    /** Certifies {@code publicKey} (a key this process made) as {@code CN=<name>}. */
    public X509Certificate issue(PublicKey publicKey, String name, Purpose purpose, Duration lifetime) {
        Instant now = clock.instant();
        Instant end = now.plus(lifetime);
        if (end.isAfter(certificate.getNotAfter().toInstant())) {
            end = certificate.getNotAfter().toInstant();
        }
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            int usage = KeyUsage.digitalSignature | (publicKey instanceof RSAPublicKey ? KeyUsage.keyEncipherment : 0);
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(certificate, serial(random), Date.from(now.minus(BACKDATE)),
                    Date.from(end), new X500Principal("CN=" + name), publicKey)
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(usage))
                    .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose.usages))
                    .addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(certificate))
                    .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(publicKey));
            return sign(builder, key);
        } catch (GeneralSecurityException | CertIOException e) {
            throw new IllegalStateException("cannot issue a certificate for " + name, e);
        }
    }

    private static void checkKey(PublicKey key) throws CertificateException {
        if (key instanceof ECPublicKey ec) {
            int bits = ec.getParams().getOrder().bitLength();
            if (bits == 256 || bits == 384) {
                return;
            }
            throw new CertificateException("the request's EC key has " + bits + " bits: use P-256 or P-384");
        }
        if (key instanceof RSAPublicKey rsa) {
            if (rsa.getModulus().bitLength() >= 2048) {
                return;
            }
            throw new CertificateException("the request's RSA key has " + rsa.getModulus().bitLength() + " bits: use 2048 or more");
        }
        throw new CertificateException("the request's key is " + key.getAlgorithm() + ": use EC (P-256, P-384) or RSA");
    }

    private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey key) throws CertificateException {
        try {
            return new JcaX509CertificateConverter().getCertificate(builder.build(new JcaContentSignerBuilder(KeyPairs.SIGNATURE).build(key)));
        } catch (OperatorCreationException e) {
            throw new CertificateException("cannot sign", e);
        }
    }

    private static BigInteger serial(SecureRandom random) {
        return new BigInteger(127, random).add(BigInteger.ONE);
    }

    private static boolean matches(PrivateKey key, PublicKey publicKey) {
        try {
            byte[] probe = "mekha-ca-key-check".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            Signature signer = Signature.getInstance(KeyPairs.SIGNATURE);
            signer.initSign(key);
            signer.update(probe);
            byte[] signature = signer.sign();
            Signature verifier = Signature.getInstance(KeyPairs.SIGNATURE);
            verifier.initVerify(publicKey);
            verifier.update(probe);
            return verifier.verify(signature);
        } catch (GeneralSecurityException e) {
            return false;
        }
    }
}
