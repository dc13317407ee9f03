#!/usr/bin/env bash
# Release download throughput and peak RSS: kasm-bootstrap's downloader (streams, hashes
# with SHA-256 on a second thread while it receives, fsyncs, renames) against `wget` and `wget` + `sha256sum`,
# in the same run, from the same loopback HTTPS server (tests/fakes/release_server.py)
# serving the same file. Prints numbers only; nothing here asserts a time.
#
#   bench/download.sh [KB_DOWNLOAD_BENCH]
#   env: DOWNLOAD_BENCH_SIZE (1G), DOWNLOAD_BENCH_ROUNDS (2), DOWNLOAD_BENCH_DIR (/var/tmp),
#        DOWNLOAD_BENCH_CONNECTIONS (4: the parallel ranged rows), DOWNLOAD_BENCH_RATE (52428800:
#        the per-connection cap of the S3-like server, bytes/s)
#
# Two servers: one unlimited (single stream against wget), one capped per connection as
# S3 caps one connection (the parallel ranged download against wget). The ratios to wget
# are printed at the end.
#
# Needs openssl, wget, python3 and /usr/bin/time (package `time`).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${KB_DOWNLOAD_BENCH:-}}
if [[ -z "$bin" ]]; then
  for c in "$here"/build/*/bench/kb_download_bench; do [[ -x "$c" ]] && bin=$c && break; done
fi
[[ -x "${bin:-}" ]] || { echo "download bench: no kb_download_bench (build the bench/ target, or pass its path)" >&2; exit 2; }
bin=$(realpath "$bin")
for tool in openssl wget python3 /usr/bin/time sha256sum; do
  command -v "$tool" >/dev/null || { echo "download bench: $tool is missing" >&2; exit 2; }
done
size=${DOWNLOAD_BENCH_SIZE:-1G}
rounds=${DOWNLOAD_BENCH_ROUNDS:-2}
work=$(mktemp -d "${DOWNLOAD_BENCH_DIR:-/var/tmp}/kb-download-bench.XXXXXX")
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=bench-ca \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
  -keyout server.key -out server.csr 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" > san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext \
  -out server.crt 2>/dev/null

echo "download bench: making a $size file of random bytes" >&2
head -c "$size" /dev/urandom > served.bin
expected=$(sha256sum served.bin | cut -d' ' -f1)
bytes=$(stat -c %s served.bin)

connections=${DOWNLOAD_BENCH_CONNECTIONS:-4}
rate=${DOWNLOAD_BENCH_RATE:-52428800}
capped_pid=""
start_server() { # name, extra args...: sets $port
  local name=$1
  shift
  python3 -u "$here/tests/fakes/release_server.py" --port 0 --file served.bin --cert server.crt --key server.key \
    "$@" > "$name.out" 2> "$name.log" &
  echo $! > "$name.pid"
  for _ in $(seq 100); do grep -q READY "$name.out" 2>/dev/null && break; sleep 0.1; done
  port=$(awk '/READY/ {print $2}' "$name.out")
  [[ -n "$port" ]] || { echo "download bench: server did not start" >&2; cat "$name.log" >&2; exit 1; }
}
start_server server
server_pid=$(cat server.pid)
url="https://127.0.0.1:$port/served.bin"
start_server capped --rate-per-connection "$rate"
capped_pid=$(cat capped.pid)
capped_url="https://127.0.0.1:$port/served.bin"
trap 'kill "$capped_pid" 2>/dev/null || true; cleanup' EXIT INT TERM

# "seconds rss_kb" of a command, from GNU time. `sync` first: each tool starts with no
# dirty pages of the one before it being written back underneath it.
measure() {
  sync
  /usr/bin/time -f "%e %M" -o time.out "$@" > cmd.out 2> cmd.err || { cat cmd.err >&2; return 1; }
  cat time.out
}
mib_s() { awk -v b="$bytes" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "inf" }'; }

printf '%-34s %8s %9s %12s\n' "tool (${size}, loopback HTTPS)" seconds "MiB/s" "peak RSS KiB"
for round in $(seq "$rounds"); do
  rm -f wget.bin kb.bin
  # Which of the two goes first alternates by round: the second one of a pair ran slower
  # in some rounds on this VM (writeback, CPU steal), whichever tool it was.
  if ((round % 2 == 0)); then
    read -r ks kr < <(measure "$bin" "$url" "$expected" "$work/kb.bin" "$work/ca.crt")
    rm -f kb.bin
  fi
  read -r ws wr < <(measure wget -q --ca-certificate=ca.crt -O wget.bin "$url")
  read -r hs hr < <(measure sha256sum wget.bin)
  [[ "$(cut -d' ' -f1 cmd.out)" == "$expected" ]] || { echo "wget got the wrong bytes" >&2; exit 1; }
  total=$(awk -v a="$ws" -v b="$hs" 'BEGIN { printf "%.2f", a + b }')
  rm -f wget.bin
  if ((round % 2 == 1)); then
    read -r ks kr < <(measure "$bin" "$url" "$expected" "$work/kb.bin" "$work/ca.crt")
    rm -f kb.bin
  fi
  printf '%-34s %8s %9s %12s\n' "round $round: wget" "$ws" "$(mib_s "$ws")" "$wr"
  printf '%-34s %8s %9s %12s\n' "round $round: wget + sha256sum" "$total" "$(mib_s "$total")" "max($wr,$hr)"
  printf '%-34s %8s %9s %12s\n' "round $round: kasm-bootstrap (hash+fsync)" "$ks" "$(mib_s "$ks")" "$kr"
  read -r ps pr < <(measure "$bin" "$url" "$expected" "$work/kb.bin" "$work/ca.crt" "$connections")
  rm -f kb.bin
  printf '%-34s %8s %9s %12s\n' "round $round: kasm-bootstrap x$connections ranged" "$ps" "$(mib_s "$ps")" "$pr"
  # The S3-like server: every connection capped at $rate bytes/s.
  read -r cws cwr < <(measure wget -q --ca-certificate=ca.crt -O wget.bin "$capped_url")
  rm -f wget.bin
  read -r c1s c1r < <(measure "$bin" "$capped_url" "$expected" "$work/kb.bin" "$work/ca.crt" 1)
  rm -f kb.bin
  read -r cps cpr < <(measure "$bin" "$capped_url" "$expected" "$work/kb.bin" "$work/ca.crt" "$connections")
  rm -f kb.bin
  printf '%-34s %8s %9s %12s\n' "round $round: capped: wget" "$cws" "$(mib_s "$cws")" "$cwr"
  printf '%-34s %8s %9s %12s\n' "round $round: capped: kasm-bootstrap x1" "$c1s" "$(mib_s "$c1s")" "$c1r"
  printf '%-34s %8s %9s %12s\n' "round $round: capped: kasm-bootstrap x$connections" "$cps" "$(mib_s "$cps")" "$cpr"
  awk -v w="$ws" -v k="$ks" -v cw="$cws" -v c1="$c1s" -v cp="$cps" -v n="$connections" 'BEGIN {
    printf "round ratios (throughput vs wget): single stream %.2fx; capped: x1 %.2fx, x%d ranged %.2fx\n",
      w / k, cw / c1, n, cw / cp }'
  echo "$ws $ks $kr $ps $pr $cws $cps $cpr" >> rounds.txt
done
# Medians over the rounds: seconds, then the ratios of the medians.
awk -v n="$connections" '
  function median(col,   i, j, t, v, m) {
    m = 0
    for (i = 1; i <= NR; i++) v[++m] = row[i, col]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
  }
  { for (c = 1; c <= NF; c++) row[NR, c] = $c }
  END {
    w = median(1); k = median(2); p = median(4); cw = median(6); cp = median(7)
    printf "median of %d rounds: wget %.2f s; kasm-bootstrap one stream %.2f s (%.2fx wget, peak RSS %d KiB), x%d ranged %.2f s (peak RSS %d KiB)\n",
      NR, w, k, w / k, median(3), n, p, median(5)
    printf "median of %d rounds, capped server: wget %.2f s; kasm-bootstrap x%d ranged %.2f s (%.2fx wget, peak RSS %d KiB)\n",
      NR, cw, n, cp, cw / cp, median(8)
  }' rounds.txt
