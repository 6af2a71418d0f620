/**
 * The agent API's mutual TLS, free of Kubernetes and of the agent: the operator's certificate authority, the names
 * that say who a certificate is (the agent of one node, the operator), key pairs and their signing requests, a key
 * manager whose identity can be renewed in place, and the checks both ends make on the other's certificate.
 */
package io.mekha.tls;
