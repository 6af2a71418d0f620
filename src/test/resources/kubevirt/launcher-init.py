"""The init of a launcher-like pod in the libvirt test tier: what virt-launcher-monitor is to a real one.

libvirt daemonizes every QEMU it starts (it forks twice), so QEMU's parent is whoever reaps orphans: in a
virt-launcher pod, its pid 1. Here this process is made a child subreaper, starts virtlogd and the libvirt
daemon (argv[1:]) as the pod's user, as virt-launcher does, and reaps every child until the daemon exits.
"""
import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
os.spawnv(os.P_NOWAIT, "/usr/sbin/virtlogd", ["virtlogd", "-f", "/etc/libvirt/virtlogd.conf"])
daemon = os.spawnv(os.P_NOWAIT, sys.argv[1], sys.argv[1:])
while True:
    try:
        pid, _ = os.wait()
    except ChildProcessError:
        break
    if pid == daemon:
        break
