#!/usr/bin/env bash
# Every test, from a fresh Debian 12 with Java 17 and Maven: installs QEMU and the guests' build
# tools (root or sudo), builds the test guest and the MPI guest image (debootstrap, as root; each
# is cached and rebuilt only when its inputs change), then runs the whole Maven test suite,
# real-QEMU tests included. Extra arguments go to Maven (e.g. -Dgroups=fast for the quick loop).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
src/guest/build-guest.sh
if [ "$(id -u)" = 0 ]; then src/guest/build-mpi-image.sh; else sudo -E src/guest/build-mpi-image.sh; fi
# the end-to-end suite (e2e/, for a real cluster) is compiled here, never run: see e2e/README.md
mvn -B -q -Pe2e test-compile
exec mvn -B test "$@"
