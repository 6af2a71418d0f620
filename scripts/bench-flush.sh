#!/usr/bin/env bash
# The flush-scheduler benchmark on a real bandwidth-limited target: an ext4 filesystem on a loop
# device whose writes the kernel throttles (blkio cgroup, write_bps on the loop device), with the
# whole benchmark (agents and their writers) inside that cgroup. Needs root, a loop device and the
# cgroup v1 blkio controller (as on this project's build machines). Prints the table that
# docs/flush-scheduler.md records.
#
#   scripts/bench-flush.sh [MB/s, default 40] [extra bench-flush options...]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE_MB=${1:-40}
shift || true
[ "$(id -u)" = 0 ] || { echo "bench-flush.sh needs root (loop device, mount, cgroup)" >&2; exit 2; }
BLKIO=/sys/fs/cgroup/blkio
[ -d "$BLKIO" ] || { echo "no cgroup v1 blkio controller at $BLKIO; throttle the target another way" >&2; exit 2; }
[ -f target/quarkus-app/quarkus-run.jar ] || mvn -B -q package -DskipTests

WORK=$(mktemp -d /tmp/mekha-bench-flush.XXXXXX)
IMG=$WORK/target.img
MNT=$WORK/shared
CG=$BLKIO/mekha-bench-flush-$$
cleanup() {
  set +e
  umount "$MNT" 2>/dev/null
  [ -n "${LOOP:-}" ] && losetup -d "$LOOP"
  [ -d "$CG" ] && { cat "$CG/cgroup.procs" 2>/dev/null | while read -r p; do echo "$p" > "$BLKIO/cgroup.procs"; done; rmdir "$CG"; }
  rm -rf "$WORK"
}
trap cleanup EXIT
truncate -s 4G "$IMG"
LOOP=$(losetup -f --show "$IMG")
mkfs.ext4 -q "$LOOP"
mkdir -p "$MNT"
mount "$LOOP" "$MNT"
MAJMIN=$(lsblk -dno MAJ:MIN "$LOOP" | tr -d ' ')
mkdir -p "$CG"
echo "$MAJMIN $((RATE_MB * 1000 * 1000))" > "$CG/blkio.throttle.write_bps_device"
echo "target: ext4 on $LOOP, writes throttled to $RATE_MB MB/s for the benchmark's processes"
# the benchmark JVM, its agents and every QEMU they start run inside the throttled cgroup
sh -c "echo \$\$ > $CG/cgroup.procs; exec java -jar target/quarkus-app/quarkus-run.jar bench-flush --target $MNT --work-dir $WORK/work $*"
