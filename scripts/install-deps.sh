#!/usr/bin/env bash
# Installs the host packages Mekha's demo and tests need on Debian 12: QEMU (10.x from
# bookworm-backports when that suite can be reached, else bookworm's 7.2), busybox-static
# and cpio for the test guest's initramfs, debootstrap, e2fsprogs and ssh-keygen for the MPI
# guest image, zstd, python3 with libvirt's virt-xml-validate (and xmllint) for the KubeVirt
# hook's tests, and libvirt's daemon with its QEMU driver and virsh for the libvirt test tier
# (11.x from bookworm-backports beside QEMU 10.x, the line virt-launcher ships; no system
# service is installed or started: the tests start their own daemons). Idempotent; safe to run
# on every CI run.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

have_all() {
  command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null &&
  [ -x /bin/busybox ] && dpkg -s busybox-static >/dev/null 2>&1 &&
  command -v cpio >/dev/null && command -v zstd >/dev/null && command -v socat >/dev/null &&
  command -v debootstrap >/dev/null && command -v mke2fs >/dev/null && command -v ssh-keygen >/dev/null &&
  command -v python3 >/dev/null && command -v virt-xml-validate >/dev/null && command -v xmllint >/dev/null &&
  [ -x /usr/sbin/libvirtd ] && [ -x /usr/sbin/virtlogd ] && command -v virsh >/dev/null &&
  dpkg -s libvirt-daemon-driver-qemu >/dev/null 2>&1 && libvirt_matches_qemu
}

# libvirt from the same suite as QEMU: bookworm's 9.0 beside backports' QEMU 10 is not a pair
# virt-launcher ships, and virsh, libvirt0 and the daemon must be one version.
libvirt_matches_qemu() {
  local q l
  q=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null)
  l=$(dpkg-query -W -f='${Version}' libvirt-daemon-driver-qemu 2>/dev/null)
  [ -n "$l" ] || return 1
  case "$q" in *bpo12*) [[ "$l" == *bpo12* ]] ;; *) [[ "$l" != *bpo12* ]] ;; esac
}

# Reuse the URI of the machine's own Debian apt source for bookworm-backports, so that no
# mirror is named here and the machine's mirror choice is respected.
debian_uri() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 ~ /bookworm / {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "$uri"
}

add_backports() {
  local list=/etc/apt/sources.list.d/mekha-backports.list
  [ -f "$list" ] && return 0
  grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
  local uri
  uri=$(debian_uri)
  if [ -z "$uri" ]; then
    echo "install-deps: no Debian apt source found; using bookworm's own QEMU" >&2
    return 1
  fi
  echo "deb $uri bookworm-backports main" | $SUDO tee "$list" >/dev/null
}

# The guest build resolves Debian's cloud kernel through apt's package lists.
kernel_resolvable() {
  grep -q 'Depends: linux-image-' <<<"$(apt-cache depends linux-image-cloud-amd64 2>/dev/null)"
}

# MEKHA_DEPS=agent-image: only what the agent container image needs (QEMU and its tools, zstd).
only_agent=0
[ "${MEKHA_DEPS:-all}" = agent-image ] && only_agent=1

if [ "$only_agent" = 0 ] && have_all && kernel_resolvable && [ "${MEKHA_FORCE_INSTALL:-0}" != 1 ]; then
  echo "install-deps: QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'), libvirt $(dpkg-query -W -f='${Version}' libvirt-daemon-driver-qemu) and tools already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
backports=0
if [ "$codename" = bookworm ] && add_backports; then backports=1; fi
$SUDO apt-get update -q
base_pkgs="busybox-static cpio zstd xz-utils socat debootstrap e2fsprogs openssh-client python3 libxml2-utils"
# libvirt-clients has virsh and virt-xml-validate; the daemon and its QEMU driver run the libvirt test tier
libvirt_pkgs="libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu"
[ "$only_agent" = 1 ] && base_pkgs="zstd ca-certificates"
qemu_pkgs="qemu-system-x86 qemu-utils"
[ "$only_agent" = 1 ] || qemu_pkgs="$qemu_pkgs $libvirt_pkgs"
if [ "$backports" = 1 ] && $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports $qemu_pkgs; then
  :
else
  echo "install-deps: bookworm-backports QEMU not available; installing the distribution's QEMU" >&2
  $SUDO apt-get install -y -q --no-install-recommends $qemu_pkgs
fi
$SUDO apt-get install -y -q --no-install-recommends $base_pkgs
echo "install-deps: QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}') installed"
if [ "$only_agent" = 0 ]; then
  echo "install-deps: libvirt $(dpkg-query -W -f='${Version}' libvirt-daemon-driver-qemu) installed (no service started)"
fi
