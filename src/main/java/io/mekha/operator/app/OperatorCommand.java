package io.mekha.operator.app;

import io.javaoperatorsdk.operator.Operator;
import io.quarkus.runtime.Quarkus;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/**
 * {@code mekha operator}: runs the Kubernetes operator (the reconcilers of checkpoints, restores and
 * schedules) until the process is stopped. The picocli front end keeps the Operator SDK from
 * starting by itself, so it is started here.
 */
@Command(name = "operator", mixinStandardHelpOptions = true,
        description = "Run the Mekha Kubernetes operator (in the cluster, as the mekha-operator Deployment).")
public class OperatorCommand implements Callable<Integer> {

    /** Looked up only when this command runs: the other commands never build an Operator (nor touch a cluster). */
    @Inject
    Instance<Operator> operator;

    @Override
    public Integer call() {
        operator.get().start();
        Quarkus.waitForExit();
        return 0;
    }
}
