#!/usr/bin/env bash
# The files a cloud image has beyond debootstrap's tree (tests/boot/make-base-image.sh,
# base image): ROOT is the tree. Its sha256 is part of the base image's stamp.
set -euo pipefail
r=$1
# The root file system by label (mkfs.ext4 -L kb-boot-root); the kernel command line
# mounts it read-write already (root=/dev/vda rw).
cat >"$r/etc/fstab" <<'FSTAB'
LABEL=kb-boot-root / ext4 defaults,errors=remount-ro 0 1
FSTAB
echo kb-boot >"$r/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
# A cloud image ships an empty machine-id: systemd makes one at the first boot, so every
# instance gets its own.
: >"$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"
# Only the EC2 datasource (and None), as an EC2 image is configured
# (dpkg-reconfigure cloud-init writes the debconf choice to 90_dpkg.cfg).
cat >"$r/etc/cloud/cloud.cfg.d/90_dpkg.cfg" <<'CFG'
# to update this file, run dpkg-reconfigure cloud-init
datasource_list: [ Ec2, None ]
CFG
# The interface name cloud-init's fallback network configuration finds and DHCPs; the
# guest has one virtio NIC.
mkdir -p "$r/etc/network/interfaces.d"
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' >"$r/etc/network/interfaces"
# cloud-init's locale module sets en_US.UTF-8 (its default) with locale-gen, which on
# Debian generates what /etc/locale.gen lists, so the image lists it (as dpkg-reconfigure
# locales would); without it update-locale refuses and the module fails.
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$r/etc/locale.gen"
grep -q '^en_US.UTF-8 UTF-8' "$r/etc/locale.gen" || echo 'en_US.UTF-8 UTF-8' >>"$r/etc/locale.gen"
# A persistent journal, as on an Ubuntu cloud image (journald's Storage=auto keeps it in
# /var/log/journal when that directory exists), so the test can read it after power-off.
mkdir -p "$r/var/log/journal"
