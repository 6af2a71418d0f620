package io.mekha.tls;

import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;

/** PEM text in and out: certificates, private keys and certificate signing requests, as Kubernetes carries them. */
public final class Pem {
    private Pem() {}

    public static String write(Object... objects) {
        StringWriter out = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
            for (Object o : objects) {
                writer.writeObject(o);
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot write PEM", e);
        }
        return out.toString();
    }

    /** Every certificate in {@code pem}, in order; none is an error. */
    public static List<X509Certificate> certificates(String pem) throws CertificateException {
        List<X509Certificate> found = new ArrayList<>();
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        for (Object o : objects(pem)) {
            if (o instanceof org.bouncycastle.cert.X509CertificateHolder holder) {
                try {
                    found.add((X509Certificate) factory.generateCertificate(new java.io.ByteArrayInputStream(holder.getEncoded())));
                } catch (IOException e) {
                    throw new CertificateException(e);
                }
            }
        }
        if (found.isEmpty()) {
            throw new CertificateException("no PEM certificate (-----BEGIN CERTIFICATE-----) found");
        }
        return found;
    }

    /** A private key as PKCS#8 ({@code PRIVATE KEY}). */
    public static String write(PrivateKey key) {
        try {
            return write(new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(key, null));
        } catch (org.bouncycastle.util.io.pem.PemGenerationException e) {
            throw new IllegalStateException("cannot write the private key", e);
        }
    }

    public static PrivateKey privateKey(String pem) throws IOException {
        for (Object o : objects(pem)) {
            JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
            if (o instanceof PEMKeyPair pair) {
                return converter.getPrivateKey(pair.getPrivateKeyInfo());
            }
            if (o instanceof PrivateKeyInfo info) {
                return converter.getPrivateKey(info);
            }
        }
        throw new IOException("no PEM private key found");
    }

    public static PKCS10CertificationRequest certificationRequest(String pem) throws IOException {
        for (Object o : objects(pem)) {
            if (o instanceof PKCS10CertificationRequest csr) {
                return csr;
            }
        }
        throw new IOException("no PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----) found");
    }

    private static List<Object> objects(String pem) {
        List<Object> objects = new ArrayList<>();
        try (PEMParser parser = new PEMParser(new StringReader(pem))) {
            Object o;
            while ((o = parser.readObject()) != null) {
                objects.add(o);
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("malformed PEM: " + e.getMessage(), e);
        }
        return objects;
    }
}
