/**
 * The Kubernetes API of Mekha, group {@code mekha.io}, version {@code v1alpha1}: the custom
 * resources users apply (checkpoints, restores, schedules), their specs and statuses. The CRDs
 * under {@code crds/} are generated from these classes.
 */
package io.mekha.api.v1alpha1;
