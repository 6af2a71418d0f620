package io.mekha.api.v1alpha1;

import io.mekha.model.TimePolicy;

/** What guests see of their clock after a restart: Virtual (continues from the cut), Step or Slew to host time. */
public enum TimePolicyName {
    Virtual, Step, Slew;

    public TimePolicy toPolicy() {
        return TimePolicy.parse(name());
    }
}
