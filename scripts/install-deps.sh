#!/usr/bin/env bash
# Installs exactly what building and testing kasm-bootstrap needs, from Debian/Ubuntu
# packages. Idempotent; safe to run on every CI start.
#   scripts/install-deps.sh          build + unit tests
#   scripts/install-deps.sh --test   also the tools the integration tests drive
set -euo pipefail

want_test_tools=0
[[ "${1:-}" == "--test" ]] && want_test_tools=1

build_pkgs=(
  build-essential cmake ninja-build pkg-config
  libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libsystemd-dev libcli11-dev catch2
  libarchive-dev libyaml-cpp-dev
)
# Tools the tests run against: fake servers (python3), network namespaces (iproute2),
# test certificates (openssl), swap header read-back (util-linux), a real Docker Engine.
test_pkgs=(
  python3 iproute2 openssl util-linux procps mount curl
  # swap tests: loop filesystems of each kind a swap file may land on, file(1) reads headers
  e2fsprogs xfsprogs btrfs-progs file
  # release download bench (bench/download.sh): the wget baseline and GNU time for peak RSS
  wget time
  # Docker tests: a real Docker Engine and the static busybox of the offline test image
  docker.io busybox-static
  # the fake Kasm release's bin/start runs `docker compose`: tests/fakes/bin/docker maps it
  # to Debian's compose 1.29
  docker-compose
  # startup bench (bench/startup.py): the stock bash script's fuser lock wait
  psmisc
  # fuzz targets (scripts/fuzz.sh): clang 14 and its libFuzzer/sanitizer runtimes
  clang libclang-rt-14-dev
  # style and static analysis (scripts/lint.sh)
  clang-format clang-tidy
  # the compiler cache scripts/test.sh keeps on the machine (KB_CACHE_DIR)
  ccache
  # chroots of Debian 11, 12 and 13 for the static binaries (scripts/test-chroots.sh)
  debootstrap
  # e2e fault suite: packet loss on the release link (iptables statistic where tc netem's
  # kernel module is missing); metadata firewall tests: iptables-nft makes Docker's
  # DOCKER-USER chain and reads our rule back (dockerd calls it too)
  iptables
  # sd-bus test (bake_systemd_test): a private dbus-daemon with a fake systemd1 in Python
  dbus-daemon python3-dbus python3-gi
  # boot suite (scripts/test-boot.sh, docs/boot.md): Packer's qemu builder (Debian's packer
  # 1.6.6 has it built in; scripts/check-packer.sh uses it too), QEMU, the VM's DHCP server
  # (dnsmasq-base: the program without a host-wide service), SSH into the guest, debugfs
  packer qemu-system-x86 qemu-utils dnsmasq-base openssh-client
)

pkgs=("${build_pkgs[@]}")
((want_test_tools)) && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "install-deps: installing ${missing[*]}" >&2
  # Another apt (unattended-upgrades, cloud-init, a second job) may hold dpkg's lock:
  # wait up to 10 minutes for it instead of failing with "Could not get lock".
  "${sudo_cmd[@]}" apt-get -q -o DPkg::Lock::Timeout=600 update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#pkgs[@]} packages present" >&2
fi
