#!/usr/bin/env bash
# The static binaries in minimal Debian 11, 12 and 13 chroots (docs/chroot-checks.md):
#
#   scripts/test-chroots.sh              every check below, then a suite x check table
#   scripts/test-chroots.sh --prepare    only make (or refresh) the cached chroots
#
# For each suite (bullseye, bookworm, trixie):
#   chroot    a `debootstrap --variant=minbase` tree from the machine cache, made when it is
#             missing, stale (older than KB_CHROOT_MAX_AGE_DAYS) or made with other arguments
#   libc      the chroot's own glibc (`ldd --version`, dpkg's libc6) is the suite's, and
#             at least one suite's differs from this machine's: the binary cannot lean on it
#   version   `kasm-bootstrap --version`, with only the binary copied in
#   plan      `kasm-bootstrap plan --config - --root /` with a minimal valid configuration
#             on stdin: the chroot itself as the machine; prints a plan, exits 0
#   run       tests/e2e/test_chroot.py: a full `run` in the fake AWS world (tests/e2e/world.py)
#             with the binary run as `ip netns exec NS chroot C /usr/local/bin/kasm-bootstrap`
#   arm64-version, arm64-plan
#             the same two for build/static-arm64/kasm-bootstrap when it exists (qemu-user
#             through binfmt_misc, or /usr/bin/qemu-aarch64-static named explicitly); skipped
#             with a message otherwise
#
# Every command in a chroot runs through `--enter` (below) in a private mount namespace: the
# chroot read-only, /proc, /sys, /dev, a tmpfs /run and /tmp, the binary on a tmpfs
# /usr/local/bin. Those mounts exist only while the command runs, so nothing is left mounted
# after a failure, Ctrl-C or SIGKILL. debootstrap also runs in a private mount namespace.
#
# Needs root (debootstrap, chroot, mounts, network namespaces); not root: exit 77.
# Exit 0 when every check passed, 1 otherwise (the table names the failing suite and check).
#
# Environment:
#   KB_CHROOT_SUITES          suites to check (default "bullseye bookworm trixie")
#   KB_CHROOT_CACHE           the cache (default /var/cache/kasm-bootstrap/chroots)
#   KB_CHROOT_MAX_AGE_DAYS    rebuild a cached chroot older than this (default 14)
#   KB_CHROOT_MIRROR          Debian mirror (default http://deb.debian.org/debian)
#   KB_CHROOT_BINARY          x86_64 binary (default build/static/kasm-bootstrap)
#   KB_CHROOT_ARM64_BINARY    aarch64 binary (default build/static-arm64/kasm-bootstrap)
#   KB_CHROOT_JOBS            debootstraps at a time (default 2, at most 2)
#
# Internal (used by tests/e2e/test_chroot.py as the world's binary wrapper):
#   scripts/test-chroots.sh --enter CHROOT [--bind DIR]... [--copy SRC DEST]...
#                           [--host-tools PID] -- COMMAND...
#   runs COMMAND chrooted into CHROOT in a new private mount namespace set up as above.
#   --bind DIR binds DIR (under /tmp) at the same path; --copy installs the file SRC as
#   DEST (under /usr/local/bin); --host-tools PID puts `docker` and `docker-compose` in
#   /run/kb-e2e/bin that run the test host's (tests/fakes/bin/docker) in PID's mount
#   namespace. Environment, process id and exit status are the command's (exec all the way).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
self="$repo/scripts/test-chroots.sh"
readonly self

# --- --enter: one command in a chroot, in a private mount namespace ---------------------
enter_usage() {
  echo "usage: test-chroots.sh --enter CHROOT [--bind DIR]... [--copy SRC DEST]... [--host-tools PID] -- COMMAND..." >&2
  exit 2
}

if [[ "${1:-}" == --enter ]]; then
  # Re-executed inside a new mount namespace whose mounts propagate nowhere; exec keeps the
  # caller's process id (a test signals and waits for it) and environment.
  exec unshare --mount --propagation private -- "$self" --entered "${@:2}"
fi

if [[ "${1:-}" == --entered ]]; then
  shift
  set -e
  c="${1:-}"
  shift || enter_usage
  [[ -d "$c" && -x "$c/bin/sh" ]] || { echo "test-chroots.sh --enter: $c is not a chroot" >&2; exit 2; }
  c="$(realpath "$c")"
  binds=() copies=() host_pid=""
  while (($#)); do
    case "$1" in
      --bind) binds+=("$2"); shift 2 ;;
      --copy) copies+=("$2" "$3"); shift 3 ;;
      --host-tools) host_pid="$2"; shift 2 ;;
      --) shift; break ;;
      *) enter_usage ;;
    esac
  done
  (($#)) || enter_usage
  # The tree itself read-only: what the binary writes goes under its --root (a bind below).
  mount --bind "$c" "$c"
  mount -o remount,bind,ro "$c"
  mount -t proc -o nosuid,nodev,noexec proc "$c/proc"
  # This namespace's /sys (ip netns exec mounts one for its network namespace) and /dev.
  mount --rbind /sys "$c/sys"
  mount --rbind /dev "$c/dev"
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$c/run"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$c/tmp"
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$c/usr/local/bin"
  for ((i = 0; i < ${#copies[@]}; i += 2)); do
    dest="${copies[i + 1]}"
    [[ "$dest" == /usr/local/bin/* ]] || { echo "test-chroots.sh --enter: --copy DEST must be under /usr/local/bin: $dest" >&2; exit 2; }
    install -m 0755 "${copies[i]}" "$c$dest"
  done
  for d in "${binds[@]}"; do
    d="$(realpath "$d")"
    [[ "$d" == /tmp/* ]] || { echo "test-chroots.sh --enter: --bind DIR must be under /tmp: $d" >&2; exit 2; }
    mkdir -p "$c$d"
    mount --bind "$d" "$c$d"
  done
  if [[ -n "$host_pid" ]]; then
    # The fake release's Docker tools are the test host's, as in every other e2e suite
    # (tests/fakes/bin/docker: `docker compose` as docker-compose), so a suite's own Docker
    # packaging cannot decide the result; everything else the installer runs (bash, sed,
    # awk, openssl, lsof...) is the chroot's.
    mkdir -p "$c/run/kb-e2e/bin"
    for tool in docker docker-compose; do
      printf '%s\n' '#!/bin/sh' \
        "exec nsenter --mount=/proc/$host_pid/ns/mnt --wd=\"\$PWD\" -- /usr/bin/env PATH=\"$repo/tests/fakes/bin:$PATH\" $tool \"\$@\"" \
        >"$c/run/kb-e2e/bin/$tool"
      chmod 0755 "$c/run/kb-e2e/bin/$tool"
    done
  fi
  exec chroot "$c" "$@"
fi

# --- the checks -------------------------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
  echo "test-chroots: SKIPPED: must run as root (debootstrap, chroot, mounts, network namespaces)" >&2
  exit 77
fi

prepare_only=0
case "${1:-}" in
  "") ;;
  --prepare) prepare_only=1 ;;
  *) echo "usage: scripts/test-chroots.sh [--prepare]" >&2; exit 2 ;;
esac

read -r -a suites <<<"${KB_CHROOT_SUITES:-bullseye bookworm trixie}"
readonly cache="${KB_CHROOT_CACHE:-/var/cache/kasm-bootstrap/chroots}"
readonly max_age_days="${KB_CHROOT_MAX_AGE_DAYS:-14}"
readonly mirror="${KB_CHROOT_MIRROR:-http://deb.debian.org/debian}"
readonly bin="${KB_CHROOT_BINARY:-$repo/build/static/kasm-bootstrap}"
readonly arm_bin="${KB_CHROOT_ARM64_BINARY:-$repo/build/static-arm64/kasm-bootstrap}"
jobs="${KB_CHROOT_JOBS:-2}"
((jobs >= 1 && jobs <= 2)) || jobs=2
# What the checks need beyond minbase: the fake installer's openssl (its self-signed pair)
# and lsof (its port check); util-linux's nsenter for the Docker tools (minbase has it,
# named so a suite that drops it from the essential set still gets it).
readonly include="openssl,lsof,util-linux"
# The recipe: a cached chroot made with other arguments is not used.
recipe() { printf 'recipe 2 (trimmed: no apt lists, doc, man, locale)\ndebootstrap --variant=minbase --arch=amd64 --include=%s %s %s\n' "$include" "$1" "$mirror"; }
# glibc of each suite (Debian's libc6): 11 2.31, 12 2.36, 13 2.41.
declare -A glibc_of=([bullseye]=2.31 [bookworm]=2.36 [trixie]=2.41)

t_all=$(date +%s.%N)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf 'test-chroots [+%ss]: %s\n' "$(secs "$t_all")" "$*" >&2; }

# Logs of this run; those of a run that was SIGKILLed (its owner gone) are removed.
for d in /tmp/kb-chroots.*; do
  [[ -f "$d/owner.pid" ]] && ! kill -0 "$(cat "$d/owner.pid")" 2>/dev/null && rm -rf "$d"
done
work="$(mktemp -d /tmp/kb-chroots.XXXXXX)"
echo "$$" >"$work/owner.pid"
children=()     # background process ids (each its own session: kill the group)
building=()     # temp dirs of debootstraps in progress
cleanup() {
  local p d
  for p in "${children[@]}"; do
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
  done
  for p in "${children[@]}"; do
    wait "$p" 2>/dev/null
  done
  for d in "${building[@]}"; do
    rm -rf --one-file-system "$d"
  done
  rm -rf "$work"
}
on_signal() {
  say "interrupted ($1): stopping the checks and cleaning up"
  cleanup
  trap - EXIT
  exit $((128 + $2))
}
trap cleanup EXIT
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'on_signal HUP 1' HUP

# bg LOG CMD...: CMD in its own session (Ctrl-C reaches only this script, which stops it
# once), output to LOG; sets $child. wait_child waits for it and returns its status.
bg() {
  local log="$1"
  shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  child=$!
  children+=("$child")
}
forget_child() {
  local p keep=()
  for p in "${children[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  children=("${keep[@]}")
}
wait_child() {
  local rc=0
  wait "$1" || rc=$?
  forget_child "$1"
  return "$rc"
}

# --- results table ----------------------------------------------------------------------
declare -A result=() took=()
checks=(chroot libc version plan run arm64-version arm64-plan)
record() { # suite check ok|FAILED|skipped seconds [note]
  result["$1/$2"]="$3"
  took["$1/$2"]="$4"
  if [[ "$3" == FAILED ]]; then
    say "$1: $2: FAILED (${4}s)${5:+: $5}"
  else
    say "$1: $2: $3 (${4}s)${5:+: $5}"
  fi
}

# --- the cache ----------------------------------------------------------------------------
# $cache/<suite>/rootfs and $cache/<suite>/stamp (the recipe); made in $cache/.<suite>.new.*
# and renamed into place only when debootstrap and the checks of the tree succeeded, so a
# partial tree is never used. A stale one is replaced the same way (the old one goes last).
mkdir -p "$cache"
chmod 0755 "$cache"
exec 9>"$cache/.lock"
if ! flock -w 1800 9; then
  echo "test-chroots: FAILED: another test-chroots.sh holds $cache/.lock for 30 min" >&2
  exit 1
fi
# Leftovers of an interrupted build (we hold the lock: nobody else is building).
for d in "$cache"/.*.new.* "$cache"/.*.old.*; do
  [[ -e "$d" ]] && { say "removing the leftover $d"; rm -rf --one-file-system "$d"; }
done

cache_state() { # suite -> "fresh" | a reason to rebuild
  local s="$1" d="$cache/$1"
  if [[ ! -f "$d/stamp" || ! -x "$d/rootfs/bin/sh" ]]; then
    echo "not cached"
  elif [[ "$(head -n2 "$d/stamp")" != "$(recipe "$s")" ]]; then
    echo "made with other arguments"
  elif [[ -n "$(find "$d/stamp" -mtime "+$((max_age_days - 1))" 2>/dev/null)" ]]; then
    echo "older than $max_age_days days"
  else
    echo fresh
  fi
}

declare -A build_pid=() build_dir=() build_t0=() build_why=()
start_build() {
  local s="$1" tmp
  tmp="$(mktemp -d "$cache/.$s.new.XXXXXX")"
  building+=("$tmp")
  build_dir[$s]="$tmp"
  build_t0[$s]=$(now)
  say "$s: debootstrap (${build_why[$s]}): $(recipe "$s" | tail -n1) -> $tmp (log $work/debootstrap-$s.log)"
  # In a private mount namespace: the /proc and /sys debootstrap mounts in the target go
  # away with it, whatever happens.
  # shellcheck disable=SC2046 # the recipe's words
  bg "$work/debootstrap-$s.log" unshare --mount --propagation private -- \
    debootstrap --variant=minbase --arch=amd64 --include="$include" "$s" "$tmp/rootfs" "$mirror"
  build_pid[$s]=$child
}
finish_build() { # suite exit-status (already reaped by wait -n)
  local s="$1" tmp="${build_dir[$1]}" rc="$2" why=""
  forget_child "${build_pid[$s]}"
  if ((rc != 0)); then
    why="debootstrap exited $rc: $(grep -E '^(E|W):' "$work/debootstrap-$s.log" | tail -n3 | tr '\n' ' ')"
    tail -n 20 "$work/debootstrap-$s.log" >&2
  elif [[ ! -x "$tmp/rootfs/usr/bin/ldd" || ! -x "$tmp/rootfs/usr/bin/nsenter" || ! -x "$tmp/rootfs/usr/bin/openssl" ]]; then
    why="the tree lacks ldd, nsenter or openssl"
  elif findmnt -rn -o TARGET | grep -qF "$tmp"; then
    why="something is still mounted under $tmp"
  fi
  if [[ -n "$why" ]]; then
    rm -rf --one-file-system "$tmp"
    record "$s" chroot FAILED "$(secs "${build_t0[$s]}")" "$why"
    return 1
  fi
  # Nothing the checks do writes into the tree (--enter mounts it read-only). Not needed by
  # any check, about half of the tree: apt's archives and lists, documentation, man pages
  # and translations.
  rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/lib/apt/lists/"* \
    "$tmp/rootfs/usr/share/doc/"* "$tmp/rootfs/usr/share/man/"* "$tmp/rootfs/usr/share/locale/"*
  recipe "$s" >"$tmp/stamp"
  date -u +'made %Y-%m-%dT%H:%M:%SZ' >>"$tmp/stamp"
  local old=""
  if [[ -e "$cache/$s" ]]; then
    old="$(mktemp -u "$cache/.$s.old.XXXXXX")"
    mv "$cache/$s" "$old"
  fi
  mv "$tmp" "$cache/$s"
  [[ -n "$old" ]] && rm -rf --one-file-system "$old"
  record "$s" chroot ok "$(secs "${build_t0[$s]}")" "made ($(du -sm "$cache/$s" | cut -f1) MB)"
}

prepare() {
  local s queue=() running=()
  for s in "${suites[@]}"; do
    local st
    st="$(cache_state "$s")"
    if [[ "$st" == fresh ]]; then
      local t0
      t0=$(now)
      record "$s" chroot ok "$(secs "$t0")" "cached, $(tail -n1 "$cache/$s/stamp")"
    else
      build_why[$s]="$st"
      queue+=("$s")
    fi
  done
  # At most $jobs debootstraps at a time, finished in the order they were started.
  while ((${#queue[@]} || ${#running[@]})); do
    while ((${#queue[@]})) && ((${#running[@]} < jobs)); do
      start_build "${queue[0]}"
      running+=("${queue[0]}")
      queue=("${queue[@]:1}")
    done
    local running_pids=() r
    for r in "${running[@]}"; do running_pids+=("${build_pid[$r]}"); done
    # The first to end (wait -n -p: bash 5.1), so a short build frees its slot at once.
    local done_pid="" rc=0 i
    wait -n -p done_pid "${running_pids[@]}" || rc=$?
    for i in "${!running[@]}"; do
      if [[ "${build_pid[${running[i]}]}" == "$done_pid" ]]; then
        finish_build "${running[i]}" "$rc"
        unset 'running[i]'
        running=("${running[@]}")
        break
      fi
    done
  done
}

say "cache $cache; suites ${suites[*]}; debootstraps $jobs at a time"
prepare
# Checks use the trees: a shared lock, so another run cannot replace one meanwhile.
flock -s 9
if ((prepare_only)); then
  rc=0
  for s in "${suites[@]}"; do [[ "${result[$s/chroot]}" == ok ]] || rc=1; done
  exit "$rc"
fi

# --- the checks in each chroot ------------------------------------------------------------
[[ -x "$bin" ]] || { echo "test-chroots: FAILED: $bin does not exist (build the static preset first)" >&2; exit 1; }
readonly py="${KB_PYTHON:-python3}"
# A minimal valid configuration for plan (docs/configuration.md: what `plan` requires), on
# stdin, so nothing but the binary is copied into the chroot. The token must come out masked.
readonly plan_token="kbchroot-not-a-real-token-7c1e"
plan_config() {
  printf '{"server_id": "3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21", "manager_address": "kasm-manager.example.internal",
 "manager_token": "%s", "provider": "aws", "server_hostname": "kasm-agent-chroot",
 "release_url": "https://kasm-static-content.s3.amazonaws.com/kasm_release_1.18.0.tar.gz",
 "release_sha256": "0000000000000000000000000000000000000000000000000000000000000000"}\n' "$plan_token"
}
# in_chroot SUITE BINARY QEMU -- ARGS...: the binary as /usr/local/bin/kasm-bootstrap in
# the suite's chroot, with an empty environment but PATH; through QEMU unless it is "".
in_chroot() {
  local s="$1" b="$2" q="$3" copies=()
  shift 4
  copies=(--copy "$b" /usr/local/bin/kasm-bootstrap)
  local run=(/usr/local/bin/kasm-bootstrap)
  if [[ -n "$q" ]]; then
    copies+=(--copy "$q" /usr/local/bin/qemu-aarch64-static)
    run=(/usr/local/bin/qemu-aarch64-static /usr/local/bin/kasm-bootstrap)
  fi
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb "$self" --enter "$cache/$s/rootfs" "${copies[@]}" -- "${run[@]}" "$@"
}

host_glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')"
declare -A glibc_in=()
check_libc() {
  local s="$1" t0 line pkg v
  t0=$(now)
  line="$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$self" --enter "$cache/$s/rootfs" -- /usr/bin/ldd --version 2>&1 | head -n1)"
  # shellcheck disable=SC2016 # dpkg-query's own ${Version}
  pkg="$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$self" --enter "$cache/$s/rootfs" -- dpkg-query -W -f='${Version}' libc6 2>&1)"
  v="${line##* }"
  glibc_in[$s]="$v"
  say "$s: chroot /usr/bin/ldd --version | head -1: $line (libc6 $pkg; this machine: glibc $host_glibc)"
  if [[ "$v" != "${glibc_of[$s]:-?}" || "$pkg" != "${glibc_of[$s]:-?}"* ]]; then
    record "$s" libc FAILED "$(secs "$t0")" "glibc '$v' (libc6 '$pkg'), expected ${glibc_of[$s]:-a known suite}"
  elif [[ "$v" == "$host_glibc" ]]; then
    record "$s" libc ok "$(secs "$t0")" "glibc $v, the same as this machine's"
  else
    record "$s" libc ok "$(secs "$t0")" "glibc $v, not this machine's $host_glibc"
  fi
}

check_version() { # suite check-name binary [qemu]
  local s="$1" name="$2" b="$3" q="${4:-}" t0 out rc=0 want
  t0=$(now)
  out="$(in_chroot "$s" "$b" "$q" -- --version 2>&1)" || rc=$?
  want="$("$bin" --version 2>&1)"
  if ((rc != 0)); then
    record "$s" "$name" FAILED "$(secs "$t0")" "--version exited $rc: ${out:0:300}"
  elif [[ "$out" != "$want" ]]; then
    record "$s" "$name" FAILED "$(secs "$t0")" "--version printed '${out:0:200}', on this machine '$want'"
  else
    record "$s" "$name" ok "$(secs "$t0")" "$out"
  fi
}

check_plan() { # suite check-name binary [qemu]
  local s="$1" name="$2" b="$3" q="${4:-}" t0 out json rc=0 why=""
  t0=$(now)
  out="$(plan_config | in_chroot "$s" "$b" "$q" -- plan --config - --root / 2>&1)" || rc=$?
  if ((rc != 0)); then
    why="plan exited $rc: $(tail -n3 <<<"$out" | tr '\n' ' ')"
  elif [[ "$out" != *"plan (dry run: nothing is changed)"* || "$out" != *$'\nroot: /\n'* ||
    "$out" != *$'\nsteps:\n'* || "$out" != *"verify-health"* ]]; then
    why="the text plan lacks its header, root, steps or verify-health: $(head -n3 <<<"$out" | tr '\n' ' ')"
  elif [[ "$out" == *"$plan_token"* ]]; then
    why="the manager token appears in the plan"
  else
    json="$(plan_config | in_chroot "$s" "$b" "$q" -- plan --config - --root / --output json 2>/dev/null)" || rc=$?
    if ((rc != 0)); then
      why="plan --output json exited $rc"
    elif ! printf '%s' "$json" | "$py" -c '
import json, sys
d = json.load(sys.stdin)
assert d["schema_version"] == 1 and d["dry_run"] is True and d["root"] == "/", d
assert [s["id"] for s in d["steps"]][0] == "preflight" and len(d["steps"]) >= 10, d["steps"]
' >"$work/plan-$s-$name.err" 2>&1; then
      why="plan --output json: $(tail -n1 "$work/plan-$s-$name.err")"
    elif [[ "$json" == *"$plan_token"* ]]; then
      why="the manager token appears in the JSON plan"
    fi
  fi
  if [[ -n "$why" ]]; then
    record "$s" "$name" FAILED "$(secs "$t0")" "$why"
  else
    record "$s" "$name" ok "$(secs "$t0")" "$(grep -cE '^ *[0-9]+\. ' <<<"$out") steps"
  fi
}

check_run() {
  local s="$1" t0 rc=0 log
  log="$work/run-$s.log"
  t0=$(now)
  say "$s: run: $py tests/e2e/test_chroot.py --binary $bin --chroot $cache/$s/rootfs (log $log)"
  bg "$log" "$py" "$repo/tests/e2e/test_chroot.py" --binary "$bin" --chroot "$cache/$s/rootfs"
  wait_child "$child" || rc=$?
  if ((rc == 0)); then
    record "$s" run ok "$(secs "$t0")" "$(grep -E '^Ran [0-9]+ tests' "$log")"
  elif ((rc == 77)); then
    record "$s" run skipped "$(secs "$t0")" "$(grep -E '^SKIPPED' "$log")"
  else
    tail -n 60 "$log" >&2
    record "$s" run FAILED "$(secs "$t0")" "test_chroot.py exited $rc: $(grep -E '^(FAIL|ERROR):' "$log" | head -n5 | tr '\n' ' ')"
  fi
}

# How the aarch64 binary runs here: binfmt_misc with the F flag (the interpreter opened at
# registration, so it works inside a chroot without qemu in it), else qemu named explicitly.
arm_how="" arm_qemu=""
if [[ -x "$arm_bin" ]]; then
  arm_file="$(file -b "$arm_bin")"
  binfmt=/proc/sys/fs/binfmt_misc/qemu-aarch64
  if [[ "$arm_file" != *aarch64* ]]; then
    arm_how="not an aarch64 ELF: $arm_file"
  elif [[ -r "$binfmt" ]] && grep -qx enabled "$binfmt" && grep -qE '^flags: .*F' "$binfmt"; then
    arm_how="binfmt_misc ($(sed -n 's/^interpreter //p' "$binfmt"), flag F)"
  elif [[ -x /usr/bin/qemu-aarch64-static ]]; then
    arm_qemu=/usr/bin/qemu-aarch64-static
    arm_how="qemu-aarch64-static copied in and named explicitly"
  else
    arm_how="no way to run aarch64 code here (no binfmt_misc F entry, no /usr/bin/qemu-aarch64-static)"
  fi
  say "aarch64 binary $arm_bin: $arm_how"
else
  say "aarch64: SKIPPED: $arm_bin does not exist (the arm64 static build was not made)"
fi

for s in "${suites[@]}"; do
  if [[ "${result[$s/chroot]}" != ok ]]; then
    for k in "${checks[@]:1}"; do result["$s/$k"]="not run"; took["$s/$k"]=0; done
    continue
  fi
  check_libc "$s"
  check_version "$s" version "$bin"
  check_plan "$s" plan "$bin"
  check_run "$s"
  if [[ ! -x "$arm_bin" ]]; then
    record "$s" arm64-version skipped 0 "no $arm_bin"
    record "$s" arm64-plan skipped 0 "no $arm_bin"
  elif [[ "$arm_how" == binfmt_misc* || -n "$arm_qemu" ]]; then
    check_version "$s" arm64-version "$arm_bin" "$arm_qemu"
    check_plan "$s" arm64-plan "$arm_bin" "$arm_qemu"
  else
    record "$s" arm64-version FAILED 0 "$arm_how"
    record "$s" arm64-plan FAILED 0 "$arm_how"
  fi
done
# The point of the libc check: at least one chroot's glibc is not the one the binary was
# built and tested on.
differs=0
for s in "${suites[@]}"; do
  [[ -n "${glibc_in[$s]:-}" && "${glibc_in[$s]}" != "$host_glibc" ]] && differs=1
done
if ((!differs)); then
  for s in "${suites[@]}"; do
    [[ "${result[$s/libc]:-}" == ok ]] && record "$s" libc FAILED "${took[$s/libc]}" "no checked suite has a glibc other than this machine's $host_glibc"
  done
fi

# --- the table ------------------------------------------------------------------------------
failed=()
{
  printf '\n========== test-chroots summary (%ss in all; this machine: glibc %s)\n' "$(secs "$t_all")" "$host_glibc"
  printf '  %-10s' suite
  for k in "${checks[@]}"; do printf ' %-15s' "$k"; done
  printf '\n'
  for s in "${suites[@]}"; do
    printf '  %-10s' "$s"
    for k in "${checks[@]}"; do
      r="${result[$s/$k]:-not run}"
      case "$r" in
        ok | FAILED) printf ' %-15s' "$r $(printf '%5.1fs' "${took[$s/$k]}")" ;;
        *) printf ' %-15s' "$r" ;;
      esac
      [[ "$r" == FAILED ]] && failed+=("$s $k")
    done
    printf '\n'
  done
} >&2
if ((${#failed[@]})); then
  printf 'test-chroots: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "test-chroots: all checks passed" >&2
