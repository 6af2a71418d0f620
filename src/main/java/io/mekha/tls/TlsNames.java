package io.mekha.tls;

import java.security.cert.X509Certificate;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;

/**
 * Who a certificate of the agent API names. An agent's certificate says {@code CN=mekha-agent:<node>} and serves;
 * the operator's says {@code CN=mekha-operator} and calls. The identity is the name, not an address: the operator
 * reaches agents at pod IPs, which another pod can take over, but not the node's key.
 */
public final class TlsNames {
    /** The Kubernetes signer that issues agents' serving certificates (the operator is that signer). */
    public static final String AGENT_SIGNER = "mekha.io/agent";
    public static final String OPERATOR = "mekha-operator";
    private static final String AGENT_PREFIX = "mekha-agent:";

    private TlsNames() {}

    /** The common name of the agent's certificate on {@code node}. */
    public static String agent(String node) {
        return AGENT_PREFIX + node;
    }

    /** The node an agent's common name is for, or null if {@code commonName} names no agent. */
    public static String nodeOf(String commonName) {
        if (commonName == null || !commonName.startsWith(AGENT_PREFIX) || commonName.length() == AGENT_PREFIX.length()) {
            return null;
        }
        return commonName.substring(AGENT_PREFIX.length());
    }

    /** The subject's common name (the one CN; null if it has none or more than one). */
    public static String commonName(X509Certificate certificate) {
        return commonName(certificate.getSubjectX500Principal().getName());
    }

    /** The common name of an RFC 2253 distinguished name that holds only that one attribute, else null. */
    public static String commonName(String distinguishedName) {
        try {
            var rdns = new LdapName(distinguishedName).getRdns();
            if (rdns.size() != 1) {
                return null;
            }
            Rdn rdn = rdns.get(0);
            return rdn.size() == 1 && rdn.getType().equalsIgnoreCase("CN") ? String.valueOf(rdn.getValue()) : null;
        } catch (InvalidNameException e) {
            return null;
        }
    }
}
