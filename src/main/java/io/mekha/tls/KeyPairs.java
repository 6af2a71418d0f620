package io.mekha.tls;

import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

/** Keys made where they are used (they never travel) and the requests that ask the CA to certify them. */
public final class KeyPairs {
    static final String SIGNATURE = "SHA256withECDSA";

    private KeyPairs() {}

    /** A fresh P-256 key pair. */
    public static KeyPair ec() {
        try {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
            generator.initialize(new ECGenParameterSpec("secp256r1"));
            return generator.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("this JVM cannot make P-256 keys", e);
        }
    }

    /** A PKCS#10 request for {@code CN=<commonName>}, signed with the key it asks to be certified (proof of possession). */
    public static PKCS10CertificationRequest request(KeyPair keys, String commonName) {
        try {
            return new JcaPKCS10CertificationRequestBuilder(new X500Principal("CN=" + commonName), keys.getPublic())
                    .build(new JcaContentSignerBuilder(SIGNATURE).build(keys.getPrivate()));
        } catch (OperatorCreationException e) {
            throw new IllegalStateException("cannot sign a certificate request", e);
        }
    }
}
