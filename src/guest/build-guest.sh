#!/usr/bin/env bash
# Builds Mekha's test guest from Debian packages only: Debian's cloud kernel plus a
# busybox-static initramfs carrying the project's workload programs (src/guest/workloads).
# Modules are listed in dependency order (insmod has no resolver).
# Output (default ~/.cache/mekha/guest, or $MEKHA_GUEST_DIR): vmlinuz, initrd.img, and a stamp
# holding the hash of every input; the guest is rebuilt only when an input changed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${MEKHA_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mekha/guest}
modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
         failover net_failover virtio_net virtio_blk virtio_console)

for tool in gcc cpio gzip apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "build-guest: $tool is missing (run scripts/install-deps.sh)" >&2; exit 1; }
done
# Not `busybox --list | grep -q`: grep -q leaves at the first match, busybox (writing one name
# per write) then dies of SIGPIPE and pipefail fails the check now and then.
[ -x /bin/busybox ] && grep -qx ip <<<"$(/bin/busybox --list)" ||
  { echo "build-guest: /bin/busybox (package busybox-static) is missing (run scripts/install-deps.sh)" >&2; exit 1; }

kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$kernel_pkg" ] || { echo "build-guest: apt cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
kernel_ver=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/ {print $2}')

qga_ver=$(apt-cache policy qemu-guest-agent | awk '/Candidate:/ {print $2}')
[ -n "$qga_ver" ] && [ "$qga_ver" != "(none)" ] || { echo "build-guest: apt cannot resolve qemu-guest-agent (run apt-get update)" >&2; exit 1; }

stamp=$( { echo "$kernel_pkg $kernel_ver qemu-guest-agent $qga_ver"; echo "${modules[*]}"; head -1 <<<"$(/bin/busybox)";
           cat "$here/build-guest.sh" "$here/init" "$here"/workloads/*.c; } | sha256sum | cut -c1-16)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
  echo "build-guest: guest $stamp is up to date in $out"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debs="$out/debs"
mkdir -p "$debs"
deb=$(ls "$debs"/"$kernel_pkg"_"${kernel_ver//:/%3a}"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  echo "build-guest: fetching $kernel_pkg $kernel_ver"
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kernel_pkg" >/dev/null)
  rm -f "$debs"/*.deb
  mv "$work"/"$kernel_pkg"_*.deb "$debs"/
  deb=$(ls "$debs"/"$kernel_pkg"_*.deb | head -1)
fi
dpkg -x "$deb" "$work/kernel"
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root qemu-guest-agent >/dev/null)
dpkg -x "$work"/qemu-guest-agent_*.deb "$work/qga"
kver=${kernel_pkg#linux-image-}
moddir="$work/kernel/lib/modules/$kver"

root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,lib/modules}
cp /bin/busybox "$root/bin/busybox"
# every applet at its usual path (the guest agent runs /sbin/hwclock, for one)
for applet in $(/bin/busybox --list-full); do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$here/init" "$root/init"
# the guest agent's guest-shutdown runs /sbin/shutdown (libvirt's shutdown --mode agent); busybox has no such
# applet, and its poweroff would signal an init that is not busybox's: power off at once
printf '#!/bin/sh\nsync\nexec /bin/busybox poweroff -f\n' > "$root/sbin/shutdown"
chmod 0755 "$root/sbin/shutdown"
for src in "$here"/workloads/*.c; do
  name=$(basename "$src" .c)
  gcc -O2 -static -Wall -Werror -o "$root/bin/$name" "$src"
done

# The guest agent (for the Step and Slew time policies) and the shared libraries it needs,
# taken from this host, where QEMU brought them.
install -m 0755 "$work/qga/usr/sbin/qemu-ga" "$root/usr/sbin/qemu-ga"
missing=$(ldd "$root/usr/sbin/qemu-ga" | awk '/not found/ {print $1}')
[ -z "$missing" ] || { echo "build-guest: qemu-ga needs libraries this host lacks: $missing (run scripts/install-deps.sh)" >&2; exit 1; }
for lib in $(ldd "$root/usr/sbin/qemu-ga" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
mkdir -p "$root/lib64" "$root/var/run"
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"

: > "$root/lib/modules/load-order"
for m in "${modules[@]}"; do
  f=$(find "$moddir" -name "$m.ko*" | head -1)
  if [ -z "$f" ]; then
    grep -q "/$m.ko" "$moddir/modules.builtin" 2>/dev/null && continue
    echo "build-guest: module $m is neither a module nor built into $kver" >&2; exit 1
  fi
  case "$f" in
    *.ko.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
    *.ko.gz) gzip -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
  esac
  echo "$m" >> "$root/lib/modules/load-order"
done

mkdir -p "$out"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initrd.img.tmp"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$stamp" > "$out/stamp"
echo "build-guest: built guest $stamp ($kver) in $out"
