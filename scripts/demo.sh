#!/usr/bin/env bash
# The main job, from a fresh Debian 12 with Java 17 and Maven: installs QEMU and the guest's
# build tools (root or sudo), builds the test guest and Mekha, then runs the local-mode demo.
# Extra arguments go to `mekha demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
src/guest/build-guest.sh
echo "demo: building Mekha (mvn package)"
mvn -B -q -DskipTests package
exec java -jar target/quarkus-app/quarkus-run.jar demo "$@"
