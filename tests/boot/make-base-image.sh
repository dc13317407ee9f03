#!/usr/bin/env bash
# Boot-test images (docs/boot.md): a Debian 12 VM disk made without any VM, cached on the
# machine like scripts/test-chroots.sh caches its chroots.
#
#   tests/boot/make-base-image.sh            make (or find cached) both images; prints
#                                            "BASE <dir>" and "PLAIN <dir>"
#   tests/boot/make-base-image.sh --base     only the base image
#
# base   debootstrap --variant=minbase of bookworm with what a boot needs (systemd, udev,
#        cloud-init, ifupdown + dhclient, the cloud kernel and initramfs, ssh, sudo, Docker
#        and Debian's docker-compose, and what the fake Kasm release's install.sh and
#        bin/start call), a few files a cloud image has (fstab, hostname, datasource
#        list), made into a raw ext4 image (mkfs.ext4 -d) with the kernel and initrd
#        beside it:
#          $cache/base/{rootfs/, base.raw, vmlinuz, initrd.img, stamp}
# plain  a copy of the base tree with our .deb installed and the image defaults written
#        by packer/scripts/provision.sh itself, run in a chroot of the copy (what Packer
#        does on the build instance; prefetch off), plus the boot test's fixtures (below):
#          $cache/plain/{plain.raw, vmlinuz, initrd.img, release.tar.gz, stamp}
#
# Boot-test fixtures in the plain image (test-only; docs/boot.md "Fixtures"):
#   - the fake Kasm release (tests/fakes/make_release.py --version $KB_BOOT_KASM_VERSION),
#     kept beside the image: its SHA-256 is in the image defaults, the test serves it;
#   - /etc/kb-boot-test: mount point of the test's second disk (/dev/vdb, ext4, made per
#     boot by tests/boot/boot_test.py) holding the test CA (ca.pem) for the release server
#     and the manager;
#   - /kbroot: / bind-mounted (rbind) once more. The fake release writes only under
#     $KASM_FAKE_ROOT and insists on a Docker socket under it, which root=/ cannot
#     satisfy (its check is "$root"/*); KASM_FAKE_ROOT=/kbroot and the Docker socket
#     /kbroot/run/docker.sock are the same files as /;
#   - tests/fakes/bin/docker (`docker compose` as docker-compose) in /opt/kb-boot-test/bin,
#     first in the unit's PATH, and a drop-in giving kasm-bootstrap.service KASM_FAKE_ROOT;
#   - kb-boot-test-images.service: imports the fake agent/proxy images into the guest's
#     dockerd (no registry is reachable) from docker_world.sh's rootfs tarball, with
#     docker_world.sh's own CMD lines.
#
# Cache: $KB_BOOT_CACHE (default /var/cache/kasm-bootstrap/boot). Each image is made in
# $cache/.<name>.new.* and renamed into place only when complete; its stamp is the recipe
# (package list, mirror, the sha256 of this script, the .deb, provision.sh and the fakes it
# copies), so a changed input rebuilds it and a partial build is never used.
#
# Environment: KB_BOOT_CACHE, KB_BOOT_MIRROR (default http://deb.debian.org/debian),
# KB_BOOT_DEB (default build/static/kasm-bootstrap.deb), KB_BOOT_KASM_VERSION (1.18.0),
# KB_BOOT_RELEASE_URL (https://10.77.0.1:8443/kasm/kasm_release_<version>.tar.gz: where
# boot_test.py serves the release).
# Needs root, debootstrap, e2fsprogs (mkfs.ext4 -d), python3; not root: exit 77.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${KB_BOOT_CACHE:-/var/cache/kasm-bootstrap/boot}"
mirror="${KB_BOOT_MIRROR:-http://deb.debian.org/debian}"
deb="${KB_BOOT_DEB:-$repo/build/static/kasm-bootstrap.deb}"
kasm_version="${KB_BOOT_KASM_VERSION:-1.18.0}"
release_url="${KB_BOOT_RELEASE_URL:-https://10.77.0.1:8443/kasm/kasm_release_${kasm_version}.tar.gz}"
only_base=0
[[ "${1:-}" == --base ]] && only_base=1

say() { printf 'make-base-image [%s]: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || { say "SKIPPED: must run as root (debootstrap, chroot)"; exit 77; }
command -v debootstrap >/dev/null || die "debootstrap is not installed"

# What a boot needs (DESIGN.md §7: python3-cffi-backend is a virtual dependency of
# cloud-init's chain that debootstrap does not resolve), plus openssh-server and sudo (the
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
for d in "$cache"/.*.new.* "$cache"/.*.old.*; do
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

# in_chroot TREE CMD...: CMD chrooted into TREE, with /proc, /sys, /dev and a tmpfs /run
# and /tmp, in a private mount namespace (nothing stays mounted, whatever happens).
in_chroot() {
  local tree=$1
  shift
  unshare --mount --propagation private -- bash -euc '
    t=$1; shift
    mount -t proc proc "$t/proc"; mount -t sysfs sysfs "$t/sys"; mount --rbind /dev "$t/dev"
    mount -t tmpfs tmpfs "$t/run"; mount -t tmpfs -o mode=1777 tmpfs "$t/tmp"
    exec chroot "$t" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
  ' in_chroot "$tree" "$@"
}

# --- base ---------------------------------------------------------------------------------
base_fresh() {
  [[ -f "$cache/base/stamp" && -f "$cache/base/base.raw" && -x "$cache/base/rootfs/bin/sh" ]] &&
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
  kernel_out "$tmp/rootfs" "$tmp"
  make_raw "$tmp/rootfs" "$tmp/base.raw"
  base_recipe >"$tmp/stamp"
  printf 'made %s (debootstrap %s s, total %s s)\n' "$(date -u +%FT%TZ)" "$((t1 - t0))" "$(($(date +%s) - t0))" >>"$tmp/stamp"
  install_dir base "$tmp"
  say "base: made in $(($(date +%s) - t0)) s"
fi
echo "BASE $cache/base"
((only_base)) && exit 0

# --- plain ----------------------------------------------------------------------------------
[[ -f "$deb" ]] || die "$deb does not exist (KB_SKIP_DEB_INSTALL_TEST=1 scripts/build-deb.sh makes it)"
fixture_files=(tests/boot/make-base-image.sh tests/boot/plain-files.sh packer/scripts/provision.sh
  tests/fakes/bin/docker tests/fakes/docker_world.sh tests/fakes/make_release.py)
plain_recipe() {
  printf 'boot plain recipe 1\nbase: %s\nkasm %s at %s\n' "$(tail -n1 "$cache/base/stamp")" "$kasm_version" "$release_url"
  sha256sum "$deb" | cut -d' ' -f1
  (cd "$repo" && sha256sum "${fixture_files[@]}" && find tests/fakes/kasm_release -type f | sort | xargs sha256sum)
}
plain_fresh() {
  [[ -f "$cache/plain/stamp" && -f "$cache/plain/plain.raw" && -f "$cache/plain/release.tar.gz" ]] &&
    [[ "$(sed '$d' "$cache/plain/stamp")" == "$(plain_recipe)" ]]
}

if plain_fresh; then
  say "plain: cached ($(tail -n1 "$cache/plain/stamp"))"
else
  t0=$(date +%s)
  tmp="$(mktemp -d "$cache/.plain.new.XXXXXX")"
  say "plain: copying the base tree to $tmp"
  cp -a "$cache/base/rootfs" "$tmp/rootfs"
  say "plain: the fake Kasm release $kasm_version"
  sha=$(python3 "$repo/tests/fakes/make_release.py" --out "$tmp/release.tar.gz" --version "$kasm_version" | tail -n1 | awk '{print $NF}')
  [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "make_release.py printed no SHA-256"
  version="$(dpkg-deb -f "$deb" Version)"
  mkdir -p "$tmp/rootfs/var/tmp/kb-provision/bin"
  cp "$deb" "$tmp/rootfs/var/tmp/kb-provision/kasm-bootstrap.deb"
  cp "$repo/packer/scripts/provision.sh" "$tmp/rootfs/var/tmp/kb-provision/provision.sh"
  # provision.sh's first step waits for the build instance's first boot
  # (`cloud-init status --wait`); in a chroot there is no boot to wait for, and cloud-init
  # would wait for a boot that never comes. Only that one command is replaced.
  printf '#!/bin/sh\necho "cloud-init (boot-test chroot): no boot to wait for: $*"\n' \
    >"$tmp/rootfs/var/tmp/kb-provision/bin/cloud-init"
  chmod 0755 "$tmp/rootfs/var/tmp/kb-provision/bin/cloud-init"
  # The image defaults: the release and, for the boot test's servers, the test CA (on the
  # test's second disk), and the Docker socket as the fake release needs it (/kbroot).
  defaults=$(printf '{"release_url": "%s", "release_sha256": "%s", "ca_bundle": "/etc/kb-boot-test/ca.pem", "manager_ca": "/etc/kb-boot-test/ca.pem", "docker_socket": "/kbroot/run/docker.sock"}' "$release_url" "$sha")
  say "plain: packer/scripts/provision.sh in a chroot (kasm-bootstrap $version)"
  in_chroot "$tmp/rootfs" /usr/bin/env PATH=/var/tmp/kb-provision/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    KB_DEB=/var/tmp/kb-provision/kasm-bootstrap.deb KB_IMAGE_DEFAULTS="$defaults" \
    KB_RELEASE_URL="$release_url" KB_RELEASE_SHA256="$sha" KB_CACHE_DIR=/var/cache/kasm-bootstrap \
    KB_PREFETCH=false KB_TOOL_VERSION="$version" KB_METRICS_FILE= \
    bash /var/tmp/kb-provision/provision.sh >"$tmp/provision.log" 2>&1 ||
    { cat "$tmp/provision.log" >&2; cp "$tmp/provision.log" /tmp/kb-boot-provision.log; rm -rf --one-file-system "$tmp"; die "provision.sh failed"; }
  rm -rf "$tmp/rootfs/var/tmp/kb-provision"
  bash "$repo/tests/boot/plain-files.sh" "$tmp/rootfs" "$kasm_version"
  kernel_out "$tmp/rootfs" "$tmp"
  make_raw "$tmp/rootfs" "$tmp/plain.raw"
  rm -rf --one-file-system "$tmp/rootfs"
  plain_recipe >"$tmp/stamp"
  printf 'made %s (%s s)\n' "$(date -u +%FT%TZ)" "$(($(date +%s) - t0))" >>"$tmp/stamp"
  install_dir plain "$tmp"
  say "plain: made in $(($(date +%s) - t0)) s"
fi
echo "PLAIN $cache/plain"
