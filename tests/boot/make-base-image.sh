#!/usr/bin/env bash
# Boot-test images (docs/boot.md): a Debian 12 VM disk made without any VM, cached on the
# machine like scripts/test-chroots.sh caches its chroots.
#
#   tests/boot/make-base-image.sh            make (or find cached) both images; prints
#                                            "BASE <dir>" and "SOURCE <dir>"
#   tests/boot/make-base-image.sh --base     only the base image
#
# base   debootstrap --variant=minbase of bookworm with what a boot needs (systemd, udev,
#        cloud-init, ifupdown + dhclient, the cloud kernel and initramfs, ssh, sudo, Docker
#        and Debian's docker-compose, and what the fake Kasm release's install.sh and
#        bin/start call), a few files a cloud image has (fstab, hostname, datasource
#        list), kept as a tree:
#          $cache/base/{rootfs/, stamp}
# source the disk Packer's qemu.debian12 source starts from (packer/kasm-bootstrap.pkr.hcl;
#        as amazon-ebs starts from Canonical's AMI): a copy of the base tree with the boot
#        test's fixtures (tests/boot/source-files.sh; docs/boot.md "Fixtures"), as qcow2,
#        and the fake Kasm release (tests/fakes/make_release.py --version
#        $KB_BOOT_KASM_VERSION) the test world serves, with its SHA-256:
#          $cache/source/{source.qcow2, vmlinuz, initrd.img, release.tar.gz, release.sha256,
#                         stamp}
#        kasm-bootstrap itself is not in it: Packer's provisioners install the .deb
#        (tests/boot/boot_test.py build).
#
# Cache: $KB_BOOT_CACHE (default /var/cache/kasm-bootstrap/boot). Each image is made in
# $cache/.<name>.new.* and renamed into place only when complete; its stamp is the recipe
# (package list, mirror, the sha256 of this script and of the fakes it copies), so a
# changed input rebuilds it and a partial build is never used.
#
# Environment: KB_BOOT_CACHE, KB_BOOT_MIRROR (default http://deb.debian.org/debian),
# KB_BOOT_KASM_VERSION (1.18.0).
# Needs root, debootstrap, e2fsprogs (mkfs.ext4 -d), qemu-img, python3; not root: exit 77.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${KB_BOOT_CACHE:-/var/cache/kasm-bootstrap/boot}"
mirror="${KB_BOOT_MIRROR:-http://deb.debian.org/debian}"
kasm_version="${KB_BOOT_KASM_VERSION:-1.18.0}"
only_base=0
[[ "${1:-}" == --base ]] && only_base=1

say() { printf 'make-base-image [%s]: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || { say "SKIPPED: must run as root (debootstrap, chroot)"; exit 77; }
command -v debootstrap >/dev/null || die "debootstrap is not installed"

# What a boot needs (python3-cffi-backend: a virtual dependency of cloud-init's chain that
# debootstrap does not resolve; docs/boot.md "What the boots found"), plus openssh-server and sudo (the
# Packer qemu builder's SSH communicator), Docker with Debian's docker-compose (the agent's
# containers), busybox-static, and what the fake release's install.sh and bin/start call
# (openssl: its self-signed pair; lsof: its port check; curl; iptables for dockerd).
# apparmor: Debian's kernel enables AppArmor, and dockerd then refuses to start a
# container without apparmor_parser to load its docker-default profile (docker.io only
# Recommends apparmor, which debootstrap does not install); an Ubuntu AMI has it.
# locales: cloud-init's locale module runs locale-gen (it fails without it).
packages="systemd,systemd-sysv,udev,dbus,cloud-init,python3-cffi-backend,ifupdown,isc-dhcp-client,iproute2,netbase"
packages+=",ca-certificates,linux-image-cloud-amd64,initramfs-tools,openssh-server,sudo,docker.io,docker-compose"
packages+=",busybox-static,openssl,lsof,curl,util-linux,iptables,apparmor,locales,python3,procps,less"
suite=bookworm

base_recipe() {
  printf 'boot base recipe 1\ndebootstrap --variant=minbase --arch=amd64 --include=%s %s %s\n' "$packages" "$suite" "$mirror"
  sha256sum "$repo/tests/boot/base-files.sh" | cut -d' ' -f1
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 3600 9 || die "another make-base-image.sh holds $cache/.lock for an hour"
# plain/: the image an earlier version of this script made with provision.sh in a chroot
# (now Packer's qemu.debian12 builds the images, in the test's run).
for d in "$cache"/.*.new.* "$cache"/.*.old.* "$cache/plain"; do
  [[ -e "$d" ]] && { say "removing the leftover $d"; rm -rf --one-file-system "$d"; }
done

# install_dir NAME TMP: TMP replaces $cache/NAME (the old one goes last).
install_dir() {
  local name=$1 tmp=$2 old=""
  if [[ -e "$cache/$name" ]]; then
    old="$(mktemp -u "$cache/.$name.old.XXXXXX")"
    mv "$cache/$name" "$old"
  fi
  chmod 0755 "$tmp"
  mv "$tmp" "$cache/$name"
  [[ -n "$old" ]] && rm -rf --one-file-system "$old"
  return 0
}

# make_raw TREE IMAGE: an ext4 file system holding TREE, with room for Docker's layers,
# the release and its extraction (sparse: only what is written takes disk space).
make_raw() {
  local tree=$1 image=$2 used_mb
  used_mb=$(du -sm --one-file-system "$tree" | cut -f1)
  truncate -s "$((used_mb + 3072))M" "$image"
  mkfs.ext4 -q -F -L kb-boot-root -d "$tree" "$image"
}

# kernel_out TREE DIR: the tree's kernel and initrd as DIR/vmlinuz and DIR/initrd.img.
kernel_out() {
  local tree=$1 dir=$2 k i
  k=$(ls "$tree"/boot/vmlinuz-* | sort -V | tail -n1)
  i=$(ls "$tree"/boot/initrd.img-* | sort -V | tail -n1)
  [[ -f "$k" && -f "$i" ]] || die "no kernel or initrd in $tree/boot"
  cp "$k" "$dir/vmlinuz"
  cp "$i" "$dir/initrd.img"
  basename "$k" >"$dir/kernel-version"
}

# --- base ---------------------------------------------------------------------------------
base_fresh() {
  [[ -f "$cache/base/stamp" && -x "$cache/base/rootfs/bin/sh" ]] &&
    [[ "$(head -n3 "$cache/base/stamp")" == "$(base_recipe)" ]]
}

if base_fresh; then
  say "base: cached ($(tail -n1 "$cache/base/stamp"))"
else
  t0=$(date +%s)
  tmp="$(mktemp -d "$cache/.base.new.XXXXXX")"
  say "base: debootstrap $suite -> $tmp (log $tmp/debootstrap.log)"
  if ! unshare --mount --propagation private -- \
    debootstrap --variant=minbase --arch=amd64 --include="$packages" "$suite" "$tmp/rootfs" "$mirror" \
    >"$tmp/debootstrap.log" 2>&1; then
    tail -n 30 "$tmp/debootstrap.log" >&2
    cp "$tmp/debootstrap.log" /tmp/kb-boot-debootstrap.log
    rm -rf --one-file-system "$tmp"
    die "debootstrap failed (log kept in /tmp/kb-boot-debootstrap.log)"
  fi
  t1=$(date +%s)
  say "base: debootstrap took $((t1 - t0)) s; cloud-image files"
  bash "$repo/tests/boot/base-files.sh" "$tmp/rootfs"
  rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb
  base_recipe >"$tmp/stamp"
  printf 'made %s (debootstrap %s s, total %s s)\n' "$(date -u +%FT%TZ)" "$((t1 - t0))" "$(($(date +%s) - t0))" >>"$tmp/stamp"
  install_dir base "$tmp"
  say "base: made in $(($(date +%s) - t0)) s"
fi
echo "BASE $cache/base"
((only_base)) && exit 0

# --- source -------------------------------------------------------------------------------
# What Packer's qemu.debian12 starts from (as amazon-ebs starts from Canonical's AMI): the
# base tree plus the boot test's fixtures, as a qcow2 disk, and the fake Kasm release the
# test world serves beside it.
fixture_files=(tests/boot/make-base-image.sh tests/boot/source-files.sh
  tests/fakes/bin/docker tests/fakes/docker_world.sh tests/fakes/make_release.py)
source_recipe() {
  printf 'boot source recipe 1\nbase: %s\nkasm %s\n' "$(tail -n1 "$cache/base/stamp")" "$kasm_version"
  (cd "$repo" && sha256sum "${fixture_files[@]}" && find tests/fakes/kasm_release -type f | sort | xargs sha256sum)
}
source_fresh() {
  [[ -f "$cache/source/stamp" && -f "$cache/source/source.qcow2" && -f "$cache/source/release.tar.gz" ]] &&
    [[ "$(sed '$d' "$cache/source/stamp")" == "$(source_recipe)" ]]
}

if source_fresh; then
  say "source: cached ($(tail -n1 "$cache/source/stamp"))"
else
  t0=$(date +%s)
  tmp="$(mktemp -d "$cache/.source.new.XXXXXX")"
  say "source: copying the base tree to $tmp"
  cp -a "$cache/base/rootfs" "$tmp/rootfs"
  say "source: the fake Kasm release $kasm_version"
  sha=$(python3 "$repo/tests/fakes/make_release.py" --out "$tmp/release.tar.gz" --version "$kasm_version" | tail -n1 | awk '{print $NF}')
  [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "make_release.py printed no SHA-256"
  echo "$sha" >"$tmp/release.sha256"
  bash "$repo/tests/boot/source-files.sh" "$tmp/rootfs" "$kasm_version"
  kernel_out "$tmp/rootfs" "$tmp"
  make_raw "$tmp/rootfs" "$tmp/source.raw"
  rm -rf --one-file-system "$tmp/rootfs"
  qemu-img convert -O qcow2 "$tmp/source.raw" "$tmp/source.qcow2"
  rm -f "$tmp/source.raw"
  source_recipe >"$tmp/stamp"
  printf 'made %s (%s s)\n' "$(date -u +%FT%TZ)" "$(($(date +%s) - t0))" >>"$tmp/stamp"
  install_dir source "$tmp"
  say "source: made in $(($(date +%s) - t0)) s"
fi
echo "SOURCE $cache/source"
