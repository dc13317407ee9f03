#!/usr/bin/env bash
# A private, offline Docker Engine for tests (docs/platform.md, "Docker Engine"): Debian's
# dockerd on its own socket, data root and exec root under WORLD_DIR, plus a small image
# (static busybox + Debian's nginx) built without any registry and loaded with
# `docker import`.
#
#   docker_world.sh start WORLD_DIR [--netns NS]
#                                     start (or find running) dockerd, import the image;
#                                     prints "SOCKET <path>", "IMAGE <name>",
#                                     "DOCKER <cli>", "DRIVER <storage driver>", "PID <dockerd>",
#                                     and one "KASM_IMAGE <name>" line per fake Kasm image
#                                     --netns NS: dockerd runs inside network namespace NS
#                                     (`ip netns add` made; nsenter) as on a real agent: iptables on, the
#                                     default bridge, so DOCKER-USER exists there and
#                                     `docker run --network bridge` containers are forwarded
#                                     by NS. Without it: host namespace, no iptables, no bridge.
#   docker_world.sh stop WORLD_DIR    remove containers, stop dockerd by PID, unmount, delete
#   docker_world.sh image             only build the cached image tarball
#
# Idempotent: start on a running world just reports it; stop on a stopped one is a no-op.
# The image rootfs tarball is cached in $KB_DOCKER_CACHE (default
# /var/tmp/kb-docker-world-cache) so only the first run downloads the nginx packages.
# Needs root, docker.io, busybox-static, and apt access for the first image build.
set -euo pipefail

DOCKER=${KB_DOCKER_CLI:-/usr/bin/docker}   # Debian's 20.10 CLI, matching the engine
DOCKERD=${KB_DOCKERD:-/usr/sbin/dockerd}
CACHE=${KB_DOCKER_CACHE:-/var/tmp/kb-docker-world-cache}
IMAGE=kb-test/nginx-busybox:1
# The images the fake release's compose file names (kasmweb/agent:V, kasmweb/proxy:V, as
# Kasm's docker-compose-agent.yaml does; docs/kasm-installer.md "The agent's containers"),
# made from the same offline rootfs since no registry is reachable. Agent: a long sleep;
# proxy: Debian's nginx in the foreground (its nginx.conf includes conf.d/*.conf, where the
# compose file mounts the release's conf/nginx). Both first read the fake installer's
# KASM_FAKE_EXITING marker (conf/nginx/.kasm-fake-exiting, mounted at /etc/nginx/conf.d in
# both containers) and exit 1 at once when it names them; restart: always restarts them.
KASM_VERSIONS="1.15.0 1.16.0 1.17.0 1.18.0"
MARKER=/etc/nginx/conf.d/.kasm-fake-exiting
AGENT_CMD='CMD ["/bin/sh","-c","if [ \"$(cat '$MARKER' 2>/dev/null)\" = kasm_agent ]; then echo KASM_FAKE_EXITING: kasm_agent exits >&2; exit 1; fi; exec sleep 1000000"]'
PROXY_CMD='CMD ["/bin/sh","-c","if [ \"$(cat '$MARKER' 2>/dev/null)\" = kasm_proxy ]; then echo KASM_FAKE_EXITING: kasm_proxy exits >&2; exit 1; fi; exec /usr/sbin/nginx -g \"daemon off;\""]'
# Renamed whenever the image's content changes, so an old cached tarball is not reused
# (v2: busybox's wget and timeout applets, for the metadata-firewall e2e test).
TARBALL_NAME=rootfs-v2.tar

die() { echo "docker_world: $*" >&2; exit 1; }

# Serialises image builds when several test processes start worlds at once.
with_cache_lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  "$@"
  flock -u 9
}

build_image_tarball() {
  local tarball="$CACHE/$TARBALL_NAME"
  [[ -s "$tarball" ]] && return 0
  command -v busybox >/dev/null || die "busybox-static is not installed"
  local work
  work=$(mktemp -d "$CACHE/build.XXXXXX")
  local debs="$CACHE/debs"
  mkdir -p "$debs"
  if ! ls "$debs"/nginx_*.deb >/dev/null 2>&1 || ! ls "$debs"/nginx-common_*.deb >/dev/null 2>&1; then
    (cd "$debs" && apt-get download nginx nginx-common >/dev/null 2>&1) ||
      die "apt-get download nginx nginx-common failed (no apt access?)"
  fi
  local r="$work/rootfs"
  mkdir -p "$r"/{bin,etc,run,tmp,var/log/nginx,var/lib/nginx,var/www/html,proc,sys,dev}
  chmod 1777 "$r/tmp"
  for deb in "$debs"/nginx_*.deb "$debs"/nginx-common_*.deb; do dpkg -x "$deb" "$r"; done
  cp "$(readlink -f "$(command -v busybox)")" "$r/bin/busybox"
  for applet in sh sleep true false cat ls echo kill ps rm mkdir test env wget timeout; do
    ln -sf busybox "$r/bin/$applet"
  done
  # The dynamic loader and every library nginx needs, at the paths ldd names.
  ldd "$r/usr/sbin/nginx" | awk '/=> \//{print $3} /^[ \t]*\/lib/{print $1}' | while read -r lib; do
    mkdir -p "$r$(dirname "$lib")"
    cp -L "$lib" "$r$lib"
  done
  # Package scripts never ran: create what they would have (users, default site).
  printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >"$r/etc/group"
  mkdir -p "$r/etc/nginx/sites-enabled"
  cat >"$r/etc/nginx/sites-enabled/default" <<'EOF'
server {
  listen 80 default_server;
  root /var/www/html;
  location / { return 200 "kb-test\n"; }
}
EOF
  tar -C "$r" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$work"
}

socket_of() { echo "$1/docker.sock"; }
pid_of() { [[ -s "$1/dockerd.pid" ]] && cat "$1/dockerd.pid" || true; }

engine_answers() { "$DOCKER" -H "unix://$(socket_of "$1")" version >/dev/null 2>&1; }

start_dockerd() {
  local dir=$1 driver=$2 netns=$3
  mkdir -p "$dir/data" "$dir/exec"
  local launch=("$DOCKERD") network=(--iptables=false --ip6tables=false --bridge=none)
  if [[ -n "$netns" ]]; then
    # nsenter enters the network namespace only. `ip netns exec` would also give dockerd a
    # mount namespace with a fresh /sys, without /sys/fs/cgroup, where it refuses to start
    # ("Devices cgroup isn't mounted"). nsenter execs dockerd (no fork): $! is its PID.
    launch=(nsenter "--net=/run/netns/$netns" "$DOCKERD")
    network=(--iptables=true --ip6tables=false)
  fi
  "${launch[@]}" --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
    --host "unix://$(socket_of "$dir")" "${network[@]}" \
    --storage-driver="$driver" >"$dir/dockerd.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/dockerd.launcher.pid"
  for _ in $(seq 1 150); do
    engine_answers "$dir" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

stop_dockerd() {
  local dir=$1 pid
  pid=$(pid_of "$dir")
  [[ -z "$pid" && -s "$dir/dockerd.launcher.pid" ]] && pid=$(cat "$dir/dockerd.launcher.pid")
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/dockerd.pid" "$dir/dockerd.launcher.pid"
}

unmount_under() {
  local dir=$1
  # Deepest first; a mount left behind would make the directory impossible to remove.
  awk -v d="$dir" '$2 ~ "^"d {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

cmd_start() {
  local dir=$1 netns=""
  if [[ "${2:-}" == --netns ]]; then
    [[ -n "${3:-}" ]] || die "--netns needs a namespace name"
    ip netns exec "$3" true 2>/dev/null || die "network namespace $3 does not exist"
    netns=$3
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  with_cache_lock build_image_tarball
  local driver
  if engine_answers "$dir"; then
    driver=$(cat "$dir/driver")
  else
    stop_dockerd "$dir"
    driver=overlay2
    if ! start_dockerd "$dir" overlay2 "$netns"; then
      # Some sandboxes refuse overlay mounts; vfs always works, only slower.
      stop_dockerd "$dir"
      unmount_under "$dir/data"
      rm -rf "$dir/data"
      driver=vfs
      start_dockerd "$dir" vfs "$netns" || { tail -20 "$dir/dockerd.log" >&2; die "dockerd did not start"; }
    fi
    echo "$driver" >"$dir/driver"
  fi
  local dk=("$DOCKER" -H "unix://$(socket_of "$dir")")
  if ! "${dk[@]}" image inspect "$IMAGE" >/dev/null 2>&1; then
    "${dk[@]}" import --change 'CMD ["/usr/sbin/nginx","-g","daemon off;"]' "$CACHE/$TARBALL_NAME" "$IMAGE" >/dev/null
  fi
  local kind v first
  for kind in agent proxy; do
    first=""
    for v in $KASM_VERSIONS; do
      if ! "${dk[@]}" image inspect "kasmweb/$kind:$v" >/dev/null 2>&1; then
        if [[ -z "$first" ]]; then
          local change=$AGENT_CMD
          [[ $kind == proxy ]] && change=$PROXY_CMD
          "${dk[@]}" import --change "$change" "$CACHE/$TARBALL_NAME" "kasmweb/$kind:$v" >/dev/null
        else
          "${dk[@]}" tag "$first" "kasmweb/$kind:$v"
        fi
      fi
      first=${first:-kasmweb/$kind:$v}
    done
  done
  echo "SOCKET $(socket_of "$dir")"
  echo "IMAGE $IMAGE"
  echo "DOCKER $DOCKER"
  echo "DRIVER $driver"
  echo "PID $(pid_of "$dir")"
  for v in $KASM_VERSIONS; do echo "KASM_IMAGE kasmweb/agent:$v"; echo "KASM_IMAGE kasmweb/proxy:$v"; done
}

cmd_stop() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir=$(cd "$dir" && pwd)
  if engine_answers "$dir"; then
    local ids
    ids=$("$DOCKER" -H "unix://$(socket_of "$dir")" ps -aq)
    [[ -n "$ids" ]] && "$DOCKER" -H "unix://$(socket_of "$dir")" rm -f $ids >/dev/null 2>&1 || true
    # User-defined networks (Kasm's installer makes two) are Linux bridges in dockerd's
    # network namespace; a stopped dockerd leaves them there. Remove them while it runs.
    local nets
    nets=$("$DOCKER" -H "unix://$(socket_of "$dir")" network ls -q --filter type=custom)
    [[ -n "$nets" ]] && "$DOCKER" -H "unix://$(socket_of "$dir")" network rm $nets >/dev/null 2>&1 || true
  fi
  stop_dockerd "$dir"
  unmount_under "$dir"
  rm -rf "$dir"
}

case "${1:-}" in
start) [[ -n "${2:-}" ]] || die "usage: $0 start WORLD_DIR [--netns NS]"; cmd_start "$2" "${3:-}" "${4:-}" ;;
stop) [[ -n "${2:-}" ]] || die "usage: $0 stop WORLD_DIR"; cmd_stop "$2" ;;
image) with_cache_lock build_image_tarball; echo "TARBALL $CACHE/$TARBALL_NAME" ;;
*) die "usage: $0 start|stop WORLD_DIR | image" ;;
esac
