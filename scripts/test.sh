#!/usr/bin/env bash
# Every test, from a fresh Debian 12 with Java 17 and Maven: installs QEMU and the guest's build
# tools (root or sudo), builds the test guest, then runs the whole Maven test suite, real-QEMU
# tests included. Extra arguments go to Maven (e.g. -Dgroups=fast for the quick loop).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
src/guest/build-guest.sh
exec mvn -B test "$@"
