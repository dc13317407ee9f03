#!/usr/bin/env bash
# Time to create and enable an 8 GiB swap file: `kasm-bootstrap swap` against the bash
# script's `fallocate + mkswap + swapon`, in the same run, on the same filesystem.
# Prints numbers only; nothing here asserts a time.
#
#   bench/swap.sh [--loop] [BINARY]
#     --loop   use a scratch ext4 filesystem on a sparse loop image instead of /var/tmp
#   env: SWAP_BENCH_SIZE (8G), SWAP_BENCH_ROUNDS (3), SWAP_BENCH_DIR (/var/tmp)
#
# Everything it enables is swapped off and deleted on exit, including on Ctrl-C. kasm-
# bootstrap runs with --root pointing at a scratch root (its own fstab, /proc/swaps and
# meminfo copies), so the host's /etc/fstab is never touched; KB_TEST_SWAPON_UNDER_ROOT=1
# lets it call swapon(2) on the file it made there.
set -euo pipefail

use_loop=0
if [[ "${1:-}" == "--loop" ]]; then use_loop=1; shift; fi
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${KB_BINARY:-}}
if [[ -z "$bin" ]]; then
  for c in "$here"/build/*/kasm-bootstrap; do [[ -x "$c" ]] && bin=$c && break; done
fi
[[ -x "${bin:-}" ]] || { echo "swap bench: no kasm-bootstrap binary (pass its path)" >&2; exit 2; }
size=${SWAP_BENCH_SIZE:-8G}
rounds=${SWAP_BENCH_ROUNDS:-3}
base=${SWAP_BENCH_DIR:-/var/tmp}

work=$(mktemp -d "$base/kb-swap-bench.XXXXXX")
mnt=""
cleanup() {
  # swapoff every area under the scratch dir before deleting it.
  if [[ -r /proc/swaps ]]; then
    awk -v w="$work" 'NR > 1 && index($1, w) == 1 { print $1 }' /proc/swaps | while read -r f; do swapoff "$f" || true; done
  fi
  if [[ -n "$mnt" ]]; then umount "$mnt" 2>/dev/null || umount -l "$mnt" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

target_dir=$work
if ((use_loop)); then
  truncate -s 20G "$work/scratch.img"
  mkfs.ext4 -q -F "$work/scratch.img"
  mnt=$work/mnt
  mkdir -p "$mnt"
  mount -o loop "$work/scratch.img" "$mnt"
  target_dir=$mnt
fi
fstype=$(findmnt -n -o FSTYPE -T "$target_dir" 2>/dev/null || stat -f -c %T "$target_dir")

# Can this host swapon a file at all? (Containers usually cannot.)
can_swapon=0
if [[ $(id -u) -eq 0 ]]; then
  probe=$target_dir/probe.swap
  if fallocate -l 1M "$probe" 2>/dev/null && chmod 600 "$probe" && mkswap -q "$probe" >/dev/null 2>&1 &&
    swapon "$probe" 2>/dev/null; then
    swapoff "$probe"
    can_swapon=1
  fi
  rm -f "$probe"
fi
((can_swapon)) || echo "swap bench: swapon is not permitted here; timing creation only (no swapon) for both" >&2

# Scratch root for kasm-bootstrap on the target filesystem: its /var/swap.1 lands there.
root=$target_dir/root
mkdir -p "$root/proc" "$root/etc"
cp /proc/meminfo "$root/proc/meminfo"
printf 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n' >"$root/proc/swaps"

now_ns() { date +%s%N; }

run_kb() { # -> ms on stdout
  local r=$1 file=$2
  : >"$r/etc/fstab"
  sync
  local t0 t1
  t0=$(now_ns)
  KB_TEST_SWAPON_UNDER_ROOT=$can_swapon "$bin" swap --root "$r" --size "$size" --quiet >/dev/null
  t1=$(now_ns)
  [[ -f "$file" ]] || { echo "swap bench: kasm-bootstrap did not create $file" >&2; exit 1; }
  ((can_swapon)) && ! grep -q "^$file " /proc/swaps && { echo "swap bench: $file not active" >&2; exit 1; }
  ((can_swapon)) && swapoff "$file"
  rm -f "$file"
  echo $(((t1 - t0) / 1000000))
}

run_baseline() {
  local file=$1
  sync
  local t0 t1
  t0=$(now_ns)
  fallocate -l "$size" "$file"
  chmod 600 "$file"
  mkswap -q "$file" >/dev/null
  ((can_swapon)) && swapon "$file"
  t1=$(now_ns)
  ((can_swapon)) && swapoff "$file"
  rm -f "$file"
  echo $(((t1 - t0) / 1000000))
}

kb_file=$root/var/swap.1
base_file=$target_dir/baseline.swap

kb_times=() base_times=()
for ((i = 1; i <= rounds; i++)); do
  kb_times+=("$(run_kb "$root" "$kb_file")")
  base_times+=("$(run_baseline "$base_file")")
done

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
kb_med=$(median "${kb_times[@]}")
base_med=$(median "${base_times[@]}")
what="create + enable"
((can_swapon)) || what="create only"
echo "swap bench: $size swap file on $fstype ($([[ $use_loop -eq 1 ]] && echo "loop image" || echo "$base")), $what, $rounds rounds"
printf '  %-34s %8s ms   (runs: %s)\n' "kasm-bootstrap swap" "$kb_med" "${kb_times[*]}"
printf '  %-34s %8s ms   (runs: %s)\n' "fallocate + mkswap + swapon" "$base_med" "${base_times[*]}"
awk -v a="$kb_med" -v b="$base_med" 'BEGIN { if (b > 0) printf "  ratio kasm-bootstrap / baseline: %.2f\n", a / b }'
