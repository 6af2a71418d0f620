#!/usr/bin/env bash
# Builds Mekha's MPI guest image from Debian packages only: a minimal bookworm root filesystem
# (debootstrap minbase) with OpenMPI, HPC Challenge (hpcc), an SSH server with keys generated
# here for passwordless mpirun between the VMs, qemu-guest-agent (the host's command channel) and
# a small init (src/guest/mpi/mekha-init) instead of systemd. Boots Debian's cloud kernel with its
# own initramfs (virtio drivers included).
# Output (default ~/.cache/mekha/mpi-image, or $MEKHA_MPI_IMAGE_DIR): disk.qcow2 (compressed;
# each VM runs on an overlay of it), vmlinuz, initrd.img, hpccinf.txt, and a stamp of the inputs.
# Needs root (debootstrap) and network access to Debian's archive (debootstrap's default mirror).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${MEKHA_MPI_IMAGE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mekha/mpi-image}
suite=bookworm
packages=openmpi-bin,hpcc,openssh-server,openssh-client,qemu-guest-agent,iproute2,procps,linux-image-cloud-amd64,initramfs-tools

[ "$(id -u)" = 0 ] || { echo "build-mpi-image: needs root (debootstrap)" >&2; exit 1; }
for tool in debootstrap mke2fs qemu-img ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "build-mpi-image: $tool is missing (run scripts/install-deps.sh)" >&2; exit 1; }
done

stamp=$( { echo "$suite $packages"; cat "$here/build-mpi-image.sh" "$here/mpi/mekha-init" "$here/mpi/hpccinf.txt"; } | sha256sum | cut -c1-16)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/disk.qcow2" ]; then
  echo "build-mpi-image: image $stamp is up to date in $out"
  exit 0
fi

work=$(mktemp -d /tmp/mekha-mpi-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
started=$(date +%s)
echo "build-mpi-image: debootstrap $suite (minbase) with $packages"
debootstrap --variant=minbase --include="$packages" "$suite" "$root" > "$work/debootstrap.log" 2>&1 ||
  { tail -30 "$work/debootstrap.log" >&2; echo "build-mpi-image: debootstrap failed (log above)" >&2; exit 1; }

# trim what a VM never needs
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/lib/apt/lists/*

install -m 0755 "$here/mpi/mekha-init" "$root/sbin/mekha-init"
install -m 0644 "$here/mpi/hpccinf.txt" "$root/root/hpccinf.txt"
echo "/dev/vda / ext4 defaults 0 1" > "$root/etc/fstab"

# ssh: one host key for every VM and one root key pair, trusted everywhere (a test cluster's keys)
rm -f "$root"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C mekha-vc-host -f "$root/etc/ssh/ssh_host_ed25519_key"
mkdir -p -m 0700 "$root/root/.ssh"
ssh-keygen -q -t ed25519 -N '' -C mekha-vc-root -f "$root/root/.ssh/id_ed25519"
cp "$root/root/.ssh/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
cat > "$root/root/.ssh/config" <<'CONF'
Host *
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
CONF
chmod 0600 "$root/root/.ssh/authorized_keys" "$root/root/.ssh/config"
cat >> "$root/etc/ssh/sshd_config" <<'CONF'
PermitRootLogin prohibit-password
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
CONF
# OpenMPI as root over TCP on eth0, launched through ssh
cat >> "$root/etc/openmpi/openmpi-mca-params.conf" <<'CONF'
btl = tcp,self,vader
btl_tcp_if_include = eth0
oob_tcp_if_include = eth0
plm_rsh_agent = ssh
CONF

kernel=$(ls "$root"/boot/vmlinuz-* | head -1)
initrd=$(ls "$root"/boot/initrd.img-* | head -1)
[ -f "$kernel" ] && [ -f "$initrd" ] || { echo "build-mpi-image: the kernel or its initramfs is missing in the image" >&2; exit 1; }

size_mb=$(( $(du -sm "$root" | cut -f1) + 384 ))
mke2fs -q -t ext4 -L mekha-root -d "$root" "$work/disk.raw" "${size_mb}M"
mkdir -p "$out"
qemu-img convert -c -O qcow2 "$work/disk.raw" "$out/disk.qcow2.partial"
mv "$out/disk.qcow2.partial" "$out/disk.qcow2"
cp "$kernel" "$out/vmlinuz"
cp "$initrd" "$out/initrd.img"
cp "$here/mpi/hpccinf.txt" "$out/hpccinf.txt"
echo "$stamp" > "$out/stamp"
echo "build-mpi-image: $out/disk.qcow2 ($(du -h "$out/disk.qcow2" | cut -f1), root filesystem ${size_mb} MiB) in $(( $(date +%s) - started )) s"
