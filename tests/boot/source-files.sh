#!/usr/bin/env bash
# The boot test's fixtures in the source image Packer's qemu.debian12 starts from
# (tests/boot/make-base-image.sh; docs/boot.md "Fixtures"): ROOT is the tree, VERSION the
# fake Kasm release's. Test-only: none of this is on a real AMI; each stands in for
# something the test world lacks.
set -euo pipefail
r=$1 version=$2
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
t=/opt/kb-boot-test

# / once more at /kbroot (rbind: /run and the Docker socket with it), and the test's second
# disk with the test CA. nofail: a boot without that disk still boots.
mkdir -p "$r/kbroot" "$r/etc/kb-boot-test"
cat >>"$r/etc/fstab" <<'FSTAB'
/ /kbroot none rbind,nofail 0 0
LABEL=kb-boot-test /etc/kb-boot-test ext4 ro,nofail,x-systemd.device-timeout=20s 0 0
FSTAB

# `docker compose` (Debian 12's docker.io has only docker-compose 1.29; an Ubuntu AMI with
# Kasm's Docker has the compose plugin) for the fake release's bin/start and install.sh:
# tests/fakes/bin/docker, in /usr/local/bin, so both the unit and a provisioner's sudo
# (secure_path) find it before /usr/bin/docker.
install -m 0755 "$repo/tests/fakes/bin/docker" "$r/usr/local/bin/docker"
mkdir -p "$r$t"
# The fake agent/proxy images, from docker_world.sh's offline rootfs tarball.
tarball=$("$repo/tests/fakes/docker_world.sh" image | awk '$1 == "TARBALL" {print $2}')
[[ -s "$tarball" ]] || { echo "plain-files: docker_world.sh image made no tarball" >&2; exit 1; }
cp "$tarball" "$r$t/rootfs.tar"
install -m 0644 "$repo/tests/fakes/docker_world.sh" "$r$t/docker_world.sh"
cat >"$r$t/import-images.sh" <<SCRIPT
#!/bin/bash
# kasmweb/agent:$version and kasmweb/proxy:$version in this machine's dockerd, made as
# tests/fakes/docker_world.sh makes them (its MARKER, AGENT_CMD and PROXY_CMD lines).
set -euo pipefail
eval "\$(grep -E '^(MARKER|AGENT_CMD|PROXY_CMD)=' $t/docker_world.sh)"
for kind in agent proxy; do
  docker image inspect "kasmweb/\$kind:$version" >/dev/null 2>&1 && continue
  change=\$AGENT_CMD
  [ \$kind = proxy ] && change=\$PROXY_CMD
  docker import --change "\$change" $t/rootfs.tar "kasmweb/\$kind:$version"
done
echo "kb-boot-test: images kasmweb/agent:$version kasmweb/proxy:$version ready"
SCRIPT
chmod 0755 "$r$t/import-images.sh"
cat >"$r/etc/systemd/system/kb-boot-test-images.service" <<'UNIT'
[Unit]
Description=Boot test: the fake Kasm service images (test-only)
Requires=docker.service
After=docker.service
# Before cloud-final: on the image build, the provisioners start once cloud-init is done
# (provision.sh waits for it) and prebake needs the images.
Before=kasm-bootstrap.service cloud-final.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/opt/kb-boot-test/import-images.sh
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/kb-boot-test-images.service "$r/etc/systemd/system/multi-user.target.wants/kb-boot-test-images.service"
mkdir -p "$r/etc/systemd/system/kasm-bootstrap.service.d"
cat >"$r/etc/systemd/system/kasm-bootstrap.service.d/kb-boot-test.conf" <<UNIT
# Boot test only: the fake release's root (tests/boot/source-files.sh).
[Unit]
Wants=kb-boot-test-images.service
After=kb-boot-test-images.service
RequiresMountsFor=/kbroot /etc/kb-boot-test

[Service]
Environment=KASM_FAKE_ROOT=/kbroot
UNIT
