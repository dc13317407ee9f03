#!/usr/bin/env bash
kb_fake_started=$EPOCHREALTIME # first: the fake's own records below are not Kasm's time
# Fake Kasm Workspaces install.sh for tests (agent role only). It follows Kasm's install.sh
# 1.16.0 step by step as docs/kasm-installer.md §1-§2 describes it; every part names the
# real behaviour it stands for. None of Kasm's code is in here. Every path the real one
# writes on the machine is written under $KASM_FAKE_ROOT instead.
#
# Environment (tests set it; kasm-bootstrap passes its own environment on):
#   KASM_FAKE_ROOT    required: the test's root dir. Without it the script refuses (exit 90),
#                     so it can never touch a real machine.
#   DOCKER_HOST       unix://SOCKET with SOCKET under $KASM_FAKE_ROOT (the product's
#                     <root>/var/run/docker.sock); anything else is refused (exit 92) ...
#   KASM_FAKE_DOCKER  ... unless this is `none`: then every Docker action (networks, image
#                     loading, bin/start's compose) is skipped with a printed note.
#   KASM_FAKE_MODE    ok (default) | fail | hang | prompt | apt-lock | apt-lock-once
#                     (or the first line of $KASM_FAKE_ROOT/fake-installer/mode)
#   KASM_FAKE_SLEEP   seconds to sleep at the dependency step (or fake-installer/sleep;
#                     sleep-child.pid appears), so a test can signal the run mid-install
#   KASM_FAKE_CONNECT_TRIES, KASM_FAKE_CONNECT_PAUSE   test-speed hook: tries (default 10)
#                     and seconds between them (default 3) of the manager connection test
#   KASM_FAKE_EXITING kasm_agent|kasm_proxy: that container exits right after it starts
#                     (written to conf/nginx/.kasm-fake-exiting, which the fake images read)
# Records, under $KASM_FAKE_ROOT/fake-installer/: runs (count), argv, env, cwd of the latest
# run (argv one item per line), argv.N / env.N / cwd.N for run N, apt-config (a copy of
# $APT_CONFIG), service-images (the -s FILE path), timing.N / timing ("start S" and "end S"
# lines in seconds since the epoch, so a benchmark can subtract the installer's own time:
# the start is taken on the script's first line, before the fake's own bookkeeping, and
# both come from bash's $EPOCHREALTIME, not a `date` process).

# ---- Fake-only guards and records (no counterpart in the real installer) ----
root="${KASM_FAKE_ROOT:-}"
if [[ -z "$root" || ! -d "$root" ]]; then
  echo "fake install.sh: KASM_FAKE_ROOT is not set to a directory; refusing to run" >&2
  exit 90
fi
root="$(cd "$root" && pwd -P)"
rec="$root/fake-installer"
mkdir -p "$rec"
run=$(($(cat "$rec/runs" 2>/dev/null || echo 0) + 1))
echo "$run" >"$rec/runs"
echo "start $kb_fake_started" >"$rec/timing.$run"
cp "$rec/timing.$run" "$rec/timing"
record_end() { echo "end $EPOCHREALTIME" >>"$rec/timing.$run"; cp "$rec/timing.$run" "$rec/timing"; }
trap record_end EXIT
printf '%s\n' "$@" >"$rec/argv.$run"
cp "$rec/argv.$run" "$rec/argv"
env >"$rec/env.$run"
cp "$rec/env.$run" "$rec/env"
pwd >"$rec/cwd.$run"
cp "$rec/cwd.$run" "$rec/cwd"
[[ -n "${APT_CONFIG:-}" && -f "$APT_CONFIG" ]] && cp "$APT_CONFIG" "$rec/apt-config"

# install.sh 1.16.0 starts with `set -e` and checks EUID before anything else (§2 step 1).
set -e
if [[ $EUID -ne 0 ]]; then
  echo "This script must be run as root"
  exit 1
fi

# Fake-only: Docker is reached only through a socket inside the test root.
use_docker=1
if [[ "${KASM_FAKE_DOCKER:-}" == none ]]; then
  use_docker=0
else
  dh="${DOCKER_HOST:-}"
  sock="${dh#unix://}"
  if [[ "$dh" != unix://* ]] || [[ "$(realpath -m "$sock")" != "$root"/* ]]; then
    echo "fake install.sh: DOCKER_HOST must be unix://<socket under $root> (or set KASM_FAKE_DOCKER=none); got '${dh}'" >&2
    exit 92
  fi
fi
docker_note() { echo "fake install.sh: KASM_FAKE_DOCKER=none: skipped: $*"; }

# Log: ./kasm_install_<epoch>.log relative to the working directory, everything tee'd into
# it, ERR trap message; removed only by cleanup_log (install.sh 1.16.0 top; §2 step 2).
LOGFILE="./kasm_install_$(date +%s).log"
notify_err() { echo "An error has occurred please review the log at ${LOGFILE}"; }
cleanup_log() { rm -f "${LOGFILE}"; }
trap notify_err ERR
exec &> >(tee "${LOGFILE}")

# The release names its version only here (install.sh 1.16.0: KASM_VERSION="1.16.0";
# docs/kasm-installer.md §5); make_release.py writes the version it is asked for.
KASM_VERSION="1.15.0"
release="$(cd "$(dirname "$0")" && pwd -P)"   # KASM_RELEASE in the real one
base_path="/opt/kasm/${KASM_VERSION}"         # KASM_INSTALL_BASE: the machine path ...
base="$root$base_path"                        # ... and where the fake writes it
# Agent config path: conf/app/ up to 1.16, conf/app/agent/ from 1.17.0 (§5).
case "$KASM_VERSION" in
  1.1[0-6].*) agent_conf="$base/conf/app/agent.app.config.yaml" ;;
  *) agent_conf="$base/conf/app/agent/agent.app.config.yaml" ;;
esac

mode="${KASM_FAKE_MODE:-}"
[[ -z "$mode" && -f "$rec/mode" ]] && mode="$(head -n1 "$rec/mode")"
mode="${mode:-ok}"
case "$mode" in ok | fail | hang | prompt | apt-lock | apt-lock-once) ;;
  *) echo "fake install.sh: unknown KASM_FAKE_MODE '$mode'"; cleanup_log; exit 91 ;;
esac

# Defaults (install.sh 1.16.0 top).
ACCEPT_EULA=false PUBLIC_HOSTNAME=false MANAGER_HOSTNAME=false API_SERVER_HOSTNAME=false
SERVER_ID=false PROVIDER=false DEFAULT_MANAGER_TOKEN=false DEFAULT_PROXY_LISTENING_PORT=443
ROLE=all OFFLINE_INSTALL=false FORCE_DEPS_INSTALL=false SKIP_EGRESS=false USE_ROLLING=false
START_SERVICES=true SWAP_CHECK=true SWAP_CREATE=false SWAP_SIZE="" CHECK_PORTS=true
CHECK_DISK=true TEST_CONNECT=true SEED_IMAGES=false PULL_IMAGES=false
SERVICE_IMAGE_TARFILE="" WORKSPACE_IMAGE_TARFILE=""

display_help() {
  echo "Kasm Installer ${KASM_VERSION} (fake, for tests; agent role only)"
  echo "Flags: -e -S -p -m -M -i -r -n -L -D -N -H -J -B -b -s -w -x -I -u -W -O -v -V -h and their long forms"
}

check_role() {
  case "$ROLE" in
    all | agent | app | db | init_remote_db | guac | proxy) ;;
    *) echo "Invalid Role Defined"; display_help; cleanup_log; exit 1 ;;
  esac
}

need_file() { # FLAGNAME FILE: the parse-time existence checks of -w, -s, -x, -a
  if [[ ! -f "$2" ]]; then
    echo "FATAL: $1 does not exist: $2"
    cleanup_log
    exit 1
  fi
}

# Profile pass (install.sh 1.16.0 "Ingest settings from defined install profile"): -V
# takes its name from $2 and reads profiles/NAME.yaml with the release's yq. The fake has
# no yq and no profiles: an existing profile is refused (fake limit), a missing one fails
# under set -e as yq's failure would.
ARGS=("$@")
for a in "${ARGS[@]}"; do
  if [[ "$a" == -V || "$a" == --install-profile ]]; then
    echo "Loading install profile ${2:-}"
    if [[ -f "$release/profiles/${2:-}.yaml" ]]; then
      echo "fake install.sh: install profiles are not implemented"; cleanup_log; exit 91
    fi
    echo "Error: open $release/profiles/${2:-}.yaml: no such file or directory" >&2
    false
  fi
done

# Argument pass (install.sh 1.16.0 "Ingest command line args", §1): every word goes
# through one case; a value is the next word; no bundling, no --opt=value; a word starting
# with - that is no known flag (values included) is an unknown option.
for i in "${!ARGS[@]}"; do
  next="${ARGS[i + 1]:-}"
  case "${ARGS[i]}" in
    -V | --install-profile) ;;
    -e | --accept-eula) ACCEPT_EULA=true ;;
    -h | --help) display_help; cleanup_log; exit 0 ;;
    -i | --agent-server-id) SERVER_ID="$next"; echo "Setting Agent Server ID as ${SERVER_ID}" ;;
    -p | --public-hostname) PUBLIC_HOSTNAME="$next"; echo "Setting Public Hostname as ${PUBLIC_HOSTNAME}" ;;
    -L | --proxy-port)
      DEFAULT_PROXY_LISTENING_PORT="$next"
      echo "Setting Default Listening Port as ${DEFAULT_PROXY_LISTENING_PORT}" ;;
    -S | --role) ROLE="$next"; check_role; echo "Setting Role as ${ROLE}" ;;
    -m | --manager-hostname) MANAGER_HOSTNAME="$next"; echo "Setting Manager Hostname as ${MANAGER_HOSTNAME}" ;;
    -M | --manager-token)
      DEFAULT_MANAGER_TOKEN="$next"
      echo "Setting Default Manager Token as ${DEFAULT_MANAGER_TOKEN}" ;;
    -n | --api-hostname) API_SERVER_HOSTNAME="$next"; echo "Setting API Server Hostname as ${API_SERVER_HOSTNAME}" ;;
    -r | --agent-provider) PROVIDER="$next"; echo "Setting Agent Provider as ${PROVIDER}" ;;
    -D | --no-start) START_SERVICES=false ;;
    -v | --verbose) set -x ;;
    -I | --no-images) SEED_IMAGES=false; PULL_IMAGES=false ;;
    -u | --no-pull-images) PULL_IMAGES=false ;;
    -W | --default-images) SEED_IMAGES=true; PULL_IMAGES=true ;;
    -w | --offline-workspaces)
      WORKSPACE_IMAGE_TARFILE="$next"; OFFLINE_INSTALL=true; SEED_IMAGES=true
      need_file "Workspace image tarfile" "$next"
      echo "Setting workspace image tarfile to ${WORKSPACE_IMAGE_TARFILE}" ;;
    -s | --offline-service)
      SERVICE_IMAGE_TARFILE="$next"; OFFLINE_INSTALL=true; PULL_IMAGES=false
      echo "$next" >"$rec/service-images"   # fake record
      need_file "Service image tarfile" "$next"
      echo "Setting service image tarfile to ${SERVICE_IMAGE_TARFILE}" ;;
    -x | --offline-plugin)
      need_file "Plugin image tarfile" "$next"
      echo "Setting plugin image tarfile to ${next}" ;;
    -a | --activation-key-file)
      need_file "Activation key file" "$next"
      echo "Using activation key ${next}" ;;
    -H | --no-swap-check) SWAP_CHECK=false ;;
    -J | --swap-size) SWAP_SIZE="$next"; SWAP_CHECK=false; SWAP_CREATE=true ;;
    -B | --no-check-ports) CHECK_PORTS=false ;;
    -b | --no-check-disk) CHECK_DISK=false ;;
    -O | --use-rolling-images) USE_ROLLING=true ;;
    -N | --skip-connection-test) TEST_CONNECT=false ;;
    --install-depends) FORCE_DEPS_INSTALL=true ;;
    --skip-egress) SKIP_EGRESS=true ;;
    # Accepted, no effect on the agent role (§1).
    -d | --no-db-init | -P | --admin-password | -U | --user-password | -Q | --db-password | \
      -R | --redis-password | -q | --db-hostname | -c | --database-user | -j | --database-name | \
      -z | --server-zone | -t | --no-db-ssl | -T | --db-port | -o | --redis-hostname | \
      -g | --db-master-user | -G | --db-master-password | -A | --enable-lossless | \
      -k | --registration-token | -y | --default-registry-url | --guac-cluster-size | \
      -X | --skip-v4l2loopback | --skip-custom-rclone) ;;
    -*) echo "Unknown option ${ARGS[i]}"; display_help; cleanup_log; exit 1 ;;
  esac
done

if [[ "$ROLE" != agent ]]; then
  echo "fake install.sh: only the agent role is implemented (role ${ROLE})"
  cleanup_log
  exit 91
fi

# EULA unless -e (function accept_eula): EOF on stdin makes read fail and set -e end it.
if [[ "$ACCEPT_EULA" == false ]]; then
  printf '\n\nEnd User License Agreement\n__________________________\n\n\n'
  cat "$release/licenses/LICENSE.txt"
  printf '\n\nA copy of the End User License Agreement is located at:\n%s\n\n' "$release/licenses/LICENSE.txt"
  read -r -p "I have read and accept End User License Agreement (y/n)? " choice
  case "$choice" in
    y | Y) ACCEPT_EULA=true ;;
    n | N) echo "Installation cannot continue"; cleanup_log; exit 1 ;;
    *) echo "Invalid Response"; echo "Installation cannot continue"; cleanup_log; exit 1 ;;
  esac
fi

# Dependencies (§2 step 5): `bash install_dependencies.sh ...` unless offline (-s/-w)
# without --install-depends. Fake: apt is only simulated. When docker and `docker compose`
# answer, the real (1.12.0) script prints "Skipping Dependency Installation." and exits 0;
# apt-lock modes stand for apt-get failing on the lock, which ends install.sh via set -e.
fake_apt_lock() {
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
  echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
  return 100
}
if [[ "$OFFLINE_INSTALL" == false || "$FORCE_DEPS_INSTALL" == true ]]; then
  if [[ "$mode" == apt-lock || ("$mode" == apt-lock-once && "$run" == 1) ]]; then
    fake_apt_lock
  fi
  echo "Skipping Dependency Installation."
fi

# Fake hooks: a slow or hung step (stands for a slow apt or pull), and `fail`: a command
# failing under set -e, as an unexpected failure in the real one does (ERR message, log
# kept, its status).
sleep_for="${KASM_FAKE_SLEEP:-}"
[[ -z "$sleep_for" && -f "$rec/sleep" ]] && sleep_for="$(head -n1 "$rec/sleep")"
if [[ -n "$sleep_for" && "$sleep_for" != 0 ]]; then
  echo "Pulling service images (slow)..."
  sleep "$sleep_for" &
  echo "$!" >"$rec/sleep-child.pid"
  # The pid, not a bare `wait`: that also waits for the process substitution of the
  # log's tee, which ends only when this script does (docs/platform.md, bash).
  wait "$!"
fi
if [[ "$mode" == hang ]]; then
  echo "Pulling service images..."
  sleep 1000 &
  echo "$!" >"$rec/hang-child.pid"
  wait "$!"
fi
if [[ "$mode" == fail ]]; then
  echo "Installing Docker..."
  bash -c 'echo "ERROR: docker installation failed" >&2; exit 3'
fi

# Port check unless -B (function is_port_ok): integer 1..65535, then lsof for a listener.
if [[ "$CHECK_PORTS" == true ]]; then
  if ! [[ "$DEFAULT_PROXY_LISTENING_PORT" =~ ^[0-9]+$ ]]; then
    echo "error: DEFAULT_PROXY_LISTENING_PORT, (${DEFAULT_PROXY_LISTENING_PORT}) is not an integer" >&2
    cleanup_log
    exit 1
  fi
  if ((DEFAULT_PROXY_LISTENING_PORT <= 0 || DEFAULT_PROXY_LISTENING_PORT > 65535)); then
    echo "error: DEFAULT_PROXY_LISTENING_PORT, (${DEFAULT_PROXY_LISTENING_PORT}) is in the valid port range"
    cleanup_log
    exit 1
  fi
  echo "Checking if DEFAULT_PROXY_LISTENING_PORT (${DEFAULT_PROXY_LISTENING_PORT}) is free"
  if lsof -Pi ":${DEFAULT_PROXY_LISTENING_PORT}" -sTCP:LISTEN; then
    echo "Port (${DEFAULT_PROXY_LISTENING_PORT}) is in use. Installation cannot continue."
    cleanup_log
    exit 255
  else
    echo "Port (${DEFAULT_PROXY_LISTENING_PORT}) is not in use."
  fi
fi

# Swap (agent/all, unless -H/-J; §2 step 7): `swapon --show` of the machine, which lists
# /proc/swaps. The fake reads the root's /proc/swaps when the test wrote one (as
# kasm-bootstrap does under --root), else the test host's (reading only);
# KASM_FAKE_MODE=prompt acts as if there were no swap and no -H, so the prompt reads EOF
# from /dev/null and set -e ends the run (log kept).
swap_exists() {
  [[ "$mode" == prompt ]] && return 1
  if [[ -f "$root/proc/swaps" ]]; then
    [[ $(grep -vc '^Filename' "$root/proc/swaps") -gt 0 ]]
  else
    [[ -n "$(swapon --show 2>/dev/null)" ]]
  fi
}
if [[ "$SWAP_CHECK" == true || "$mode" == prompt ]]; then
  if swap_exists; then
    echo 'Swap Exists'
  else
    printf '\n--------------------------------------------------------------------------------'
    printf '\n                             WARNING  '
    printf '\n--------------------------------------------------------------------------------\n\n'
    echo 'Your system does not have a Swap file or partition. Even with adequate RAM it is'
    echo 'imperative to a have a swap file for Kasm to be stable.'
    read -r -p "Do you want to create a swap partition on this system (y/n)? " choice
    case "$choice" in
      y | Y) echo "fake install.sh: the swap size menu is not implemented"; cleanup_log; exit 91 ;;
      n | N) echo "Continuing Installation" ;;
      *) echo "Invalid Response"; echo "Installation Exiting"; cleanup_log; exit 1 ;;
    esac
  fi
fi
# -J MB: a swap file if there is none. Fake: the file is made under the root and mkswap'd;
# swapon is not run (it would act on the test host).
if [[ "$SWAP_CREATE" == true ]]; then
  if swap_exists; then
    echo 'Swap Exists'
  else
    echo "Swap file not present creating a new swap file"
    mkdir -p "$root/mnt" "$root/etc"
    fallocate -l "${SWAP_SIZE}M" "$root/mnt/Kasm.swap" || dd if=/dev/zero bs=1M count="${SWAP_SIZE}" of="$root/mnt/Kasm.swap"
    chmod 600 "$root/mnt/Kasm.swap"
    mkswap "$root/mnt/Kasm.swap"
    echo "fake install.sh: swapon /mnt/Kasm.swap not run"
    echo '/mnt/Kasm.swap swap swap defaults 0 0' | tee -a "$root/etc/fstab"
  fi
fi
# Disk check (§2 step 8) prompts only with -W and < 50 GB free: not simulated.

# `id -u kasm || useradd kasm` (§2 step 9): plain useradd, no fixed ids. Fake: the next
# free uid >= 1000 in the root's /etc/passwd, a group kasm with the same id when free
# (Debian's USERGROUPS_ENAB), home /home/kasm not created, Debian's default shell.
mkdir -p "$root/etc"
touch "$root/etc/passwd" "$root/etc/group"
if ! grep -q '^kasm:' "$root/etc/passwd"; then
  next_id() { awk -F: 'BEGIN{m=999} $3>=1000 && $3<60000 && $3>m {m=$3} END{print m+1}' "$1"; }
  uid=$(next_id "$root/etc/passwd")
  gid=$uid
  if awk -F: -v g="$gid" '$3==g{f=1} END{exit !f}' "$root/etc/group"; then gid=$(next_id "$root/etc/group"); fi
  grep -q '^kasm:' "$root/etc/group" || echo "kasm:x:$gid:" >>"$root/etc/group"
  gid=$(awk -F: '$1=="kasm"{print $3}' "$root/etc/group")
  echo "kasm:x:$uid:$gid::/home/kasm:/bin/sh" >>"$root/etc/passwd"
fi

# rm -rf /opt/kasm/<version>, then the directory list and modes (§2 step 10).
rm -rf "$base"
for d in bin certs www file_mappings/common conf/nginx/services.d conf/nginx/containers.d \
  conf/database/seed_data conf/app tmp/api tmp/manager tmp/guac tmp/rdpgw/var tmp/rdpgw/tmp \
  log/nginx log/logrotate; do
  mkdir -p "$base/$d"
done
chmod 777 "$base/log" "$base/log/nginx" "$base/log/logrotate" "$base/conf/nginx/containers.d"

# Self-signed pair (§2 step 11): RSA-2048, 1825 days, CN=$(hostname), stderr discarded;
# chmod 600 on the .crt only; root:root.
openssl req -x509 -nodes -days 1825 -newkey rsa:2048 -keyout "$base/certs/kasm_nginx.key" \
  -out "$base/certs/kasm_nginx.crt" \
  -subj "/C=US/ST=VA/L=None/O=None/OU=DoFu/CN=$(hostname)/emailAddress=none@none.none" 2>/dev/null
chmod 600 "$base/certs/kasm_nginx.crt"

# Copies from the release (§2 step 12). The compose files get one documented deviation:
# their host-side bind sources (/opt/kasm/..., /var/run/docker.sock) are prefixed with the
# root, so the test's dockerd mounts the files the fake installed.
cp -r "$release"/conf/app/* "$base/conf/app/"
cp "$release/conf/database/data.sql" "$base/conf/database/"
for f in default_properties.yaml default_images_amd64.yaml default_images_arm64.yaml default_agents.yaml; do
  cp "$release/conf/database/seed_data/$f" "$base/conf/database/seed_data/"
done
chmod -R 444 "$base/conf/database"
for f in orchestrator.conf logging.conf compress.conf; do cp -r "$release/conf/nginx/$f" "$base/conf/nginx/$f"; done
mkdir -p "$base/docker/.conf"
cp "$release"/docker/*.yaml "$base/docker/.conf/"
sed -i -E "s#^([[:space:]]*- )/#\\1${root}/#" "$base"/docker/.conf/*.yaml
cp -r "$release/bin/" "$base/"
cp -r "$release/licenses/" "$base/"
cp "$release/licenses/LICENSE.txt" "$base/"
if [[ "$USE_ROLLING" == true ]]; then
  sed -i '/ image:/ s/"$/-rolling"/' "$base"/docker/.conf/*.yaml
fi

# Agent branch ("Installing Agent Role", §2 step 13).
echo "Installing Agent Role"
cp -r "$release/conf/nginx/upstream_agent.conf" "$base/conf/nginx/upstream_agent.conf"
cp -r "$release/conf/nginx/services.d/agent.conf" "$base/conf/nginx/services.d/agent.conf"
cp "$base/docker/.conf/docker-compose-agent.yaml" "$base/docker/docker-compose.yaml"

# get_manager_hostname / set_manager_hostname
if [[ "$MANAGER_HOSTNAME" == false ]]; then
  manager_hostname_input=
  while [[ $manager_hostname_input == "" ]]; do
    read -r -p "Enter the Kasm manager's hostname or IP : " manager_hostname_input
  done
  MANAGER_HOSTNAME=$manager_hostname_input
  echo "Using manager ip/hostname: [${MANAGER_HOSTNAME}]"
fi
sed -i "s/hostnames: \['proxy.*/hostnames: \['${MANAGER_HOSTNAME}'\]/g" "$agent_conf"

# get_public_hostname (default: the src address of the route to 1.1.1.1) / set_public_hostname
if [[ "$PUBLIC_HOSTNAME" == false ]]; then
  default_ip=$(ip route get 1.1.1.1 | grep -oP 'src \K\S+')
  read -r -p "Enter the network facing IP or hostname [${default_ip}]: " public_hostname_input
  PUBLIC_HOSTNAME=${public_hostname_input:-$default_ip}
  echo "Using ip/hostname: [${PUBLIC_HOSTNAME}]"
fi
sed -i "s/public_hostname.*/public_hostname: ${PUBLIC_HOSTNAME}/g" "$agent_conf"

# get_manager_token / set_manager_token (agent config and the seed properties; the real
# edits the latter with yq, the fake with sed on its own layout)
if [[ "$DEFAULT_MANAGER_TOKEN" == false ]]; then
  manager_token_input=
  while [[ $manager_token_input == "" ]]; do
    read -r -p "Enter the Kasm manager token : " manager_token_input
  done
  DEFAULT_MANAGER_TOKEN=$manager_token_input
  echo "Using manager token: [${DEFAULT_MANAGER_TOKEN}]"
fi
sed -i "s/ token:.*/ token: \"${DEFAULT_MANAGER_TOKEN}\"/g" "$agent_conf"
props="$base/conf/database/seed_data/default_properties.yaml"
sed -i "/^- name: token\$/{n;/category: manager/{n;s/value:.*/value: \"${DEFAULT_MANAGER_TOKEN}\"/}}" "$props"

# set_agent_server_id: a fresh uuid without -i; agent config and default_agents.yaml
if [[ "$SERVER_ID" == false ]]; then SERVER_ID=$(cat /proc/sys/kernel/random/uuid); fi
sed -i "s/server_id.*/server_id: ${SERVER_ID}/g" "$agent_conf"
sed -i "s/00000000-0000-0000-0000-000000000000/${SERVER_ID}/g" "$base/conf/database/seed_data/default_agents.yaml"

# set_provider: only with -r
if [[ "$PROVIDER" != false ]]; then sed -i "s/provider.*/provider: ${PROVIDER}/g" "$agent_conf"; fi

# set_listening_port: only when the port is not 443
if [[ "$DEFAULT_PROXY_LISTENING_PORT" != 443 ]]; then
  p=$DEFAULT_PROXY_LISTENING_PORT
  echo "Updating configurations with custom DEFAULT_PROXY_LISTENING_PORT (${p})"
  [[ -f "$agent_conf" ]] && sed -i "s/public_port.*/public_port: ${p}/g" "$agent_conf"
  [[ -f "$base/conf/nginx/orchestrator.conf" ]] && sed -i "s/listen.*/listen ${p} ssl ;/g" "$base/conf/nginx/orchestrator.conf"
  grep -rl "443:443" "$base/docker/" | xargs -I '{}' sed -i "s/- \"443:443\"/- \"${p}:${p}\"/g" {}
  # the real sets .zones[default].proxy_port and the logging log_port with yq
  sed -i -e "s/^  proxy_port: .*/  proxy_port: ${p}/" \
    -e "/^- name: log_port\$/{n;/category: logging/{n;s/value:.*/value: \"${p}\"/}}" "$props"
fi

# Fake: KASM_FAKE_EXITING, read by the fake images' command (tests/fakes/docker_world.sh).
[[ -n "${KASM_FAKE_EXITING:-}" ]] && echo "$KASM_FAKE_EXITING" >"$base/conf/nginx/.kasm-fake-exiting"

# create_docker_network
if ((use_docker)); then
  if docker network inspect kasm_default_network &>/dev/null; then
    echo "Docker network kasm_default_network already exists. Will not create"
  else
    echo "Creating docker network kasm_default_network"
    docker network create --driver=bridge kasm_default_network
  fi
else
  docker_note "docker network create kasm_default_network"
fi

# remove_network_sidecar_plugin (always): stop every container on kasm_sidecar_network,
# remove that network, rm -rf /var/run/kasm-sidecar /var/log/kasm-sidecar. Not simulated:
# plugin disable/rm, the FORWARD rules and br_kasm_sidecar / k-* links (host networking).
if ((use_docker)); then
  for c in $(docker ps --filter "network=kasm_sidecar_network" --format "{{.Names}}"); do
    docker stop "$c"
  done
  docker network rm kasm_sidecar_network &>/dev/null || true
else
  docker_note "stop containers on kasm_sidecar_network, docker network rm kasm_sidecar_network"
fi
rm -rf "$root/var/run/kasm-sidecar" "$root/var/log/kasm-sidecar"

# install_network_sidecar_plugin unless --skip-egress: api_hostname files, then the plugin
# from Docker Hub and `service docker restart`. Fake: the files only; the plugin is not
# reachable (no registry) and the test's dockerd is not restarted.
if [[ "$SKIP_EGRESS" == false ]]; then
  mkdir -p "$root/var/run/kasm-sidecar"
  echo "$MANAGER_HOSTNAME:$DEFAULT_PROXY_LISTENING_PORT" >"$root/var/run/kasm-sidecar/api_hostname"
  echo "" >"$root/var/run/kasm-sidecar/api_hostname_external"
  echo "Installing docker sidecar network plugin using api hostname: $MANAGER_HOSTNAME:$DEFAULT_PROXY_LISTENING_PORT"
  echo "fake install.sh: docker plugin install kasmweb/kasm-network-plugin and the docker restart not simulated"
fi

# create_sidecar_network: --skip-egress removes the proxy's second network and
# networks.kasm_sidecar_network from docker/docker-compose.yaml (the real with yq, the fake
# with awk on its own layout); else creates the network with the plugin's driver, errors
# ignored. Fake: the bridge driver, since the plugin cannot be installed here.
compose="$base/docker/docker-compose.yaml"
if [[ "$SKIP_EGRESS" == true ]]; then
  awk '
    /^[[:space:]]+- kasm_sidecar_network[[:space:]]*$/ { next }
    /^  kasm_sidecar_network:/ { skip = 1; next }
    skip && /^    / { next }
    { skip = 0; print }' "$compose" >"$compose.tmp"
  mv "$compose.tmp" "$compose"
elif ((use_docker)); then
  if docker network inspect kasm_sidecar_network &>/dev/null; then
    echo "Docker sidecar network \"kasm_sidecar_network\" already exists. Will not create"
  else
    echo "Creating docker sidecar network \"kasm_sidecar_network\""
    docker network create --driver=bridge kasm_sidecar_network &>/dev/null || true
  fi
else
  docker_note "docker network create kasm_sidecar_network"
fi

# load_service_images (-s): untar into the release dir, docker load each image listed in
# service_images/images.txt from service_images/<name with : and / as _>.tar.
if [[ -n "$SERVICE_IMAGE_TARFILE" ]]; then
  tar xf "${SERVICE_IMAGE_TARFILE}" -C "$release"
  while IFS="" read -r image || [[ -n "$image" ]]; do
    echo "Loading image: $image"
    name=$(echo "$image" | sed -r 's#[:/]#_#g')
    if ((use_docker)); then
      docker load --input "$release/service_images/$name.tar"
    else
      [[ -f "$release/service_images/$name.tar" ]]
      docker_note "docker load --input service_images/$name.tar"
    fi
  done <"$release/service_images/images.txt"
fi

# connectivity_test unless -N: up to 10 tries, 3 s apart, of the manager's healthcheck
# (host -n or -m, port -L, certificate not checked); a body containing "true" passes.
if [[ "$TEST_CONNECT" == true ]]; then
  [[ "$API_SERVER_HOSTNAME" == false ]] && API_SERVER_HOSTNAME=$MANAGER_HOSTNAME
  url="https://${API_SERVER_HOSTNAME}:${DEFAULT_PROXY_LISTENING_PORT}/api/__healthcheck"
  connected=false
  echo "Checking connectivity to the web application"
  for ((try = 1; try <= ${KASM_FAKE_CONNECT_TRIES:-10}; try++)); do
    echo "Trying ${API_SERVER_HOSTNAME} healthcheck attempt:$try"
    check=$(curl --max-time 5 -sLk "$url" || :)
    if [[ "$check" =~ .*"true".* ]]; then
      connected=true
      break
    fi
    sleep "${KASM_FAKE_CONNECT_PAUSE:-3}"
  done
  if [[ "$connected" == true ]]; then
    echo "Web application connectivity passed at $url"
  else
    echo "Web application connectivity failed please check your firewall configuration or API server host settings"
    echo "Connection to $url failed"
    echo "Installation will not continue"
    cleanup_log
    exit 1
  fi
fi

# load_workspace_images (-w): the same as -s with workspace_images/.
if [[ -n "$WORKSPACE_IMAGE_TARFILE" ]]; then
  tar xf "${WORKSPACE_IMAGE_TARFILE}" -C "$release"
  while IFS="" read -r image || [[ -n "$image" ]]; do
    echo "Loading image: $image"
    name=$(echo "$image" | sed -r 's#[:/]#_#g')
    if ((use_docker)); then docker load --input "$release/workspace_images/$name.tar"; else docker_note "docker load $name"; fi
  done <"$release/workspace_images/images.txt"
fi

# §2 step 14, then the links with absolute targets (step 15). The targets are machine
# paths: on a test host they point outside the root, which the product resolves inside it.
chmod +x "$base"/bin/*
chmod +x "$base"/bin/utils/*
chmod -R 777 "$base/conf/nginx"
rm -f "$root/opt/kasm/current"
rm -f "$root/opt/kasm/bin"
ln -sf "$base_path" "$root/opt/kasm/current"
ln -sf /opt/kasm/current/bin "$root/opt/kasm/bin"

# bin/start unless -D (step 16); its failure ends install.sh through set -e.
if [[ "$START_SERVICES" == true ]]; then
  echo "Starting Kasm Services"
  "$base/bin/start"
else
  echo "Not starting Kasm Services"
fi

printf '\n\n'
echo "Installation Complete"
cleanup_log
