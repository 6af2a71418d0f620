package io.mekha.agent;

import io.mekha.agent.api.AgentDtos.ExecRequest;
import io.mekha.agent.api.AgentDtos.ExecResult;
import io.mekha.agent.api.AgentDtos.VmInfo;
import io.mekha.agent.qemu.GuestCommands;
import io.mekha.agent.qemu.QemuVm;
import io.mekha.agent.qemu.VmStartException;
import io.mekha.agent.runtime.VmRuntime;
import io.mekha.model.VmSpec;
import io.mekha.qmp.QmpException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * The VMs this node runs or drives, by name: those the agent started (local runtime), those the
 * runtime finds by itself (KubeVirt's VMIs), and after a restart the QEMU that is the VM now.
 */
final class VmRegistry {
    static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");

    private final String node;
    private final VmRuntime runtime;
    private final VmLocks locks;
    private final SegmentHubs hubs;
    private final Map<String, QemuVm> vms = new ConcurrentHashMap<>();
    private final Set<String> starting = ConcurrentHashMap.newKeySet();

    VmRegistry(String node, VmRuntime runtime, VmLocks locks, SegmentHubs hubs) {
        this.node = node;
        this.runtime = runtime;
        this.locks = locks;
        this.hubs = hubs;
    }

    VmInfo start(VmSpec spec) throws AgentException, InterruptedException {
        if (spec == null || spec.name() == null || !NAME.matcher(spec.name()).matches()) {
            throw AgentException.invalid("a VM needs a name of letters, digits, '.', '_' or '-'");
        }
        if (vms.containsKey(spec.name()) || !starting.add(spec.name())) {
            throw AgentException.conflict("VM '" + spec.name() + "' already runs on node " + node);
        }
        try {
            hubs.ensure(spec);
            QemuVm vm = runtime.start(spec);
            vms.put(spec.name(), vm);
            return info(vm);
        } catch (VmStartException e) {
            throw AgentException.unprocessable(e.getMessage(), e);
        } finally {
            starting.remove(spec.name());
        }
    }

    List<VmInfo> list() {
        discover();
        return vms.values().stream().map(this::info).toList();
    }

    VmInfo info(String name) throws AgentException {
        return info(require(name));
    }

    /** Null when each of {@code sources} is the VM it says it is (on KubeVirt: runs in the launcher pod the operator named). */
    String identityProblem(List<QemuVm> sources) {
        return runtime.identityProblem(sources);
    }

    /** The launcher pods of the VMs the operator is about to act on, by VM name. */
    void expectPods(java.util.Map<String, io.mekha.model.PodIdentity> pods) throws AgentException {
        for (String name : pods.keySet()) {
            if (name == null || !name.matches("[a-z0-9]([-a-z0-9]*[a-z0-9])?_[a-z0-9]([-a-z0-9.]*[a-z0-9])?")) {
                throw AgentException.invalid("pods: '" + name + "' is not a VMI's name on a node (<namespace>_<name>)");
            }
            if (pods.get(name) == null) {
                throw AgentException.invalid("pods: VM '" + name + "' needs its launcher pod's podUid and containerId");
            }
        }
        runtime.expectPods(pods);
    }

    /** The VM by that name, or a refusal that says which VMs this node has. */
    QemuVm require(String name) throws AgentException {
        QemuVm vm = vms.get(name);
        if (vm == null || vm.role() == QemuVm.Role.ATTACHED) {
            discover();
            vm = vms.get(name);
        }
        if (vm == null) {
            throw AgentException.notFound("no VM '" + name + "' on node " + node + " (it runs " + vms.keySet() + ")");
        }
        return vm;
    }

    /** The QEMU that is VM {@code name} now, or null. */
    QemuVm current(String name) {
        return vms.get(name);
    }

    /** After a restart: {@code vm} is the VM from now on. */
    void replace(QemuVm vm) {
        vms.put(vm.name(), vm);
    }

    /** Runs a command in a VM's guest through its guest agent and returns its exit code and output. */
    ExecResult exec(String name, ExecRequest request) throws AgentException, InterruptedException {
        QemuVm vm = require(name);
        if (!vm.isAlive()) {
            throw AgentException.conflict("VM '" + name + "' on node " + node + " is not running");
        }
        try {
            return GuestCommands.run(vm, request.argv(), request.stdin(), request.timeout() == null ? Duration.ofSeconds(60) : request.timeout());
        } catch (IllegalArgumentException e) {
            throw AgentException.invalid(e.getMessage());
        } catch (QmpException e) {
            throw AgentException.conflict("VM '" + name + "': " + e.getMessage());
        }
    }

    /** Stops a VM (QEMU quits, or is killed after a grace period). Refused while it is in a checkpoint. */
    void stop(String name) throws AgentException {
        QemuVm vm = require(name);
        if (vm.role() == QemuVm.Role.ATTACHED) {
            throw AgentException.conflict("VM '" + name + "' is KubeVirt's: stop it through KubeVirt (virtctl stop), not through Mekha");
        }
        String lock = locks.holder(name);
        if (lock != null) {
            throw AgentException.conflict("VM '" + name + "' is in checkpoint " + lock + "; abort it first");
        }
        vms.remove(name);
        vm.shutdown(Duration.ofSeconds(5));
    }

    /** Takes in the VMs the runtime finds running by itself (KubeVirt's VMIs), and lets go of those that went away. */
    private void discover() {
        List<QemuVm> found = runtime.discover();
        for (QemuVm vm : found) {
            vms.compute(vm.name(), (name, known) -> known == null || known.role() == QemuVm.Role.ATTACHED || !known.isAlive() ? vm : known);
        }
        vms.values().removeIf(vm -> vm.role() == QemuVm.Role.ATTACHED && !found.contains(vm) && !locks.locked(vm.name()));
    }

    private VmInfo info(QemuVm vm) {
        String state;
        try {
            state = vm.isAlive() ? vm.qmp().execute("query-status", null, Duration.ofSeconds(5)).path("status").asText() : "dead";
        } catch (QmpException e) {
            state = vm.isAlive() ? "unreachable" : "dead";
        }
        return new VmInfo(vm.name(), node, state, vm.pid(), vm.accelerator().name(), locks.holder(vm.name()),
                vm.paths().console().toString(), vm.spec());
    }
}
