#!/usr/bin/env bash
# The boot suite (docs/boot.md): the image Packer builds, booted in a real VM with real
# cloud-init and systemd, under QEMU TCG in network namespaces this script's tests make.
#
#   scripts/test-boot.sh          build both images, boot each, reboot the plain one
#
# 1. tests/boot/make-base-image.sh: the Debian 12 source image (cached on the machine under
#    $KB_BOOT_CACHE, default $KB_CACHE_DIR/boot; a clean machine makes it, about 3 min).
# 2. tests/boot/boot_test.py build, plain and baked at once (one VM each; never cached: the
#    images hold this checkout's .deb, build/static/kasm-bootstrap.deb, which
#    scripts/build-deb.sh makes; the release stage does).
# 3. tests/boot/boot_test.py boot, both images at once; the plain one is then rebooted
#    (--reboot; the baked image's second boot is the same units and files, and one VM
#    fewer on two cores keeps the stage shorter: `boot_test.py boot --image
#    build/boot/baked --reboot` runs it).
# The images, consoles and logs go to $KB_BOOT_OUT (default build/boot). Ends with one line
# per check ("ok" or "FAILED") and "boot: N passed, M failed". Not root: exit 77.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "test-boot: SKIPPED: must run as root (namespaces, taps, QEMU)"; exit 77; }
out="${KB_BOOT_OUT:-build/boot}"
export KB_BOOT_CACHE="${KB_BOOT_CACHE:-${KB_CACHE_DIR:+$KB_CACHE_DIR/boot}}"
[[ -n "$KB_BOOT_CACHE" ]] || unset KB_BOOT_CACHE
deb=build/static/kasm-bootstrap.deb
[[ -f "$deb" ]] || { echo "test-boot: FAILED: $deb does not exist (scripts/build-deb.sh makes it)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
t0=$SECONDS
log() { printf '[test-boot + %ds] %s\n' $((SECONDS - t0)) "$*"; }

log "source image (tests/boot/make-base-image.sh)"
tests/boot/make-base-image.sh >/dev/null

names=()
results=()
# run_pair WHAT CMD1 -- CMD2: both at once, each into its own log; records both results.
run_pair() {
  local what=$1 a=$2 b=$3
  shift 3
  local -a c1=() c2=()
  while (($#)) && [[ $1 != -- ]]; do c1+=("$1"); shift; done
  shift
  c2=("$@")
  log "$what: $a and $b at once (logs $out/$a.log, $out/$b.log)"
  "${c1[@]}" >"$out/$a.log" 2>&1 &
  local p1=$!
  "${c2[@]}" >"$out/$b.log" 2>&1 &
  local p2=$!
  local r1=0 r2=0
  wait "$p1" || r1=$?
  wait "$p2" || r2=$?
  names+=("$a" "$b")
  results+=("$r1" "$r2")
  for n in "$a" "$b"; do grep -E '^(PASSED|FAILED)' "$out/$n.log" | sed "s/^/  $n: /" || true; done
}

bt=tests/boot/boot_test.py
run_pair "build" build-plain build-baked \
  python3 "$bt" build --kind plain --out "$out/plain" --keep "$out/build-plain.keep" -- \
  python3 "$bt" build --kind baked --out "$out/baked" --keep "$out/build-baked.keep"
if [[ -f "$out/plain/build.json" && -f "$out/baked/build.json" ]]; then
  run_pair "boot" boot-plain boot-baked \
    python3 "$bt" boot --image "$out/plain" --reboot --marks "$out/plain-marks.json" --keep "$out/boot-plain.keep" -- \
    python3 "$bt" boot --image "$out/baked" --marks "$out/baked-marks.json" --keep "$out/boot-baked.keep"
else
  names+=(boot-plain boot-baked)
  results+=(1 1)
  log "boot: not run, an image was not built"
fi

# The serial console's summary lines: what `aws ec2 get-console-output` would show.
for k in plain baked; do
  f="$out/boot-$k.keep/boot-console.log"
  if [[ -f $f ]]; then
    grep -aoE 'kasm-bootstrap [^ ]+: (SUCCESS|FAILED)[^[:cntrl:]]*' "$f" | sed "s/^/  console ($k): /" || true
  fi
done

passed=0 failed=0
echo "========== test-boot summary"
for i in "${!names[@]}"; do
  if [[ ${results[i]} -eq 0 ]]; then
    echo "  ok      ${names[i]}"
    passed=$((passed + 1))
  else
    echo "  FAILED  ${names[i]} (exit ${results[i]}; log $out/${names[i]}.log)"
    failed=$((failed + 1))
  fi
done
echo "boot: $passed passed, $failed failed ($((SECONDS - t0)) s)"
((failed == 0))
