package io.mekha.agent;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Which checkpoint holds which VM on this node: one checkpoint or restore at a time per VM. */
final class VmLocks {
    private final Map<String, String> holders = new ConcurrentHashMap<>();

    /** Locks every VM for {@code holder}, or none of them. */
    void lockAll(List<String> vms, String holder) throws AgentException {
        List<String> locked = new ArrayList<>();
        for (String vm : vms) {
            String other = holders.putIfAbsent(vm, holder);
            if (other != null) {
                locked.forEach(v -> holders.remove(v, holder));
                throw AgentException.conflict("VM '" + vm + "' is already in checkpoint " + other
                        + "; one checkpoint or restore at a time per VM");
            }
            locked.add(vm);
        }
    }

    void unlock(String vm, String holder) {
        holders.remove(vm, holder);
    }

    /** The checkpoint holding {@code vm}, or null. */
    String holder(String vm) {
        return holders.get(vm);
    }

    boolean locked(String vm) {
        return holders.containsKey(vm);
    }

    /** Refuses when any of {@code vms} is in a checkpoint. */
    void requireFree(List<String> vms) throws AgentException {
        for (String vm : vms) {
            String holder = holders.get(vm);
            if (holder != null) {
                throw AgentException.conflict("VM '" + vm + "' is in checkpoint " + holder + "; one checkpoint or restore at a time per VM");
            }
        }
    }
}
