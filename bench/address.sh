#!/usr/bin/env bash
# Address detection benchmark (issue 3). Not a test: it prints numbers.
#
# Builds two throw-away "clouds" out of network namespaces (needs root and iproute2):
#   instance ns (10.213.0.2/24, default via .1) <-veth-> gateway ns (10.213.0.1/24)
# In the first, the gateway owns 169.254.169.254 and runs tests/fakes/imds.py on port 80
# with IMDSv2 required. In the second, nothing owns 169.254.169.254 and the gateway
# (forwarding off) drops what is sent there, as on a cloud without that service. Then it
# times, in the same run and against the same fakes:
#   - kasm-bootstrap detect-address (defaults; DMI under --root says Amazon EC2)
#   - the bash startup script's line: curl -s http://169.254.169.254/latest/meta-data/local-ipv4
#
# Usage: bench/address.sh [path/to/kasm-bootstrap]   (RUNS=5 CURL_CAP=20 by default)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-${KB_BINARY:-}}"
if [ -z "$bin" ]; then
  bin="$(ls -t "$here"/build/*/kasm-bootstrap 2>/dev/null | head -n1 || true)"
fi
[ -x "$bin" ] || { echo "address.sh: no kasm-bootstrap binary (give its path)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "address.sh: needs root for ip netns" >&2; exit 2; }
runs="${RUNS:-5}"
curl_cap="${CURL_CAP:-20}"

tag="kbb$$"
work="$(mktemp -d /tmp/kb-bench-address.XXXXXX)"
fake_pid=""
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null || true
  for ns in "${tag}i" "${tag}g"; do ip netns delete "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/root/sys/class/dmi/id"
echo "Amazon EC2" >"$work/root/sys/class/dmi/id/sys_vendor"

make_cloud() { # $1 = yes|no: does the gateway own 169.254.169.254?
  for ns in "${tag}i" "${tag}g"; do ip netns delete "$ns" 2>/dev/null || true; done
  ip netns add "${tag}i"
  ip netns add "${tag}g"
  ip -n "${tag}i" link set lo up
  ip -n "${tag}g" link set lo up
  ip -n "${tag}i" link add "${tag}a" type veth peer name "${tag}b" netns "${tag}g"
  ip -n "${tag}i" addr add 10.213.0.2/24 dev "${tag}a"
  ip -n "${tag}i" link set "${tag}a" up
  ip -n "${tag}i" route add default via 10.213.0.1
  ip -n "${tag}g" addr add 10.213.0.1/24 dev "${tag}b"
  ip -n "${tag}g" link set "${tag}b" up
  ip netns exec "${tag}g" sysctl -q -w net.ipv4.ip_forward=0
  if [ "$1" = yes ]; then ip -n "${tag}g" addr add 169.254.169.254/32 dev lo; fi
}

start_fake() {
  ip netns exec "${tag}g" python3 -u "$here/tests/fakes/imds.py" --port 0 --bind 169.254.169.254 --port 80 \
    --tokens required --local-ipv4 172.31.77.5 "$@" >"$work/fake.out" 2>"$work/fake.log" &
  fake_pid=$!
  for _ in $(seq 100); do grep -q READY "$work/fake.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "address.sh: fake IMDS did not start" >&2
  cat "$work/fake.log" >&2
  exit 1
}

stop_fake() { kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null || true; fake_pid=""; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Runs "$@" inside the instance namespace RUNS times; prints "median min max" in ms and
# leaves the last stdout in $work/last.out.
time_runs() {
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(now_ms)
    ip netns exec "${tag}i" "$@" >"$work/last.out" 2>"$work/last.err" || true
    t1=$(now_ms)
    times+=($((t1 - t0)))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%d %d %d", a[int((NR+1)/2)], a[1], a[NR]}'
}

report() { # label, "median min max", result text
  read -r med min max <<<"$2"
  printf '  %-46s median %6d ms  (min %d, max %d)  -> %s\n' "$1" "$med" "$min" "$max" "$3"
}

kb_result() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("address"), "from", d.get("source"))' \
    "$work/last.out" 2>/dev/null || echo "failed: $(tail -n1 "$work/last.err")"
}

echo "kasm-bootstrap address detection benchmark ($runs runs each; binary $bin)"

echo
echo "1. EC2 instance with IMDSv2 required (HttpTokens=required), fake IMDS at 169.254.169.254:80"
make_cloud yes
start_fake
r=$(time_runs "$bin" detect-address --root "$work/root" --output json)
report "kasm-bootstrap detect-address" "$r" "$(kb_result)"
r=$(time_runs curl -s http://169.254.169.254/latest/meta-data/local-ipv4)
report "bash: curl -s .../meta-data/local-ipv4" "$r" "'$(head -c 40 "$work/last.out")' (IMDSv1 refused: no address)"
stop_fake

echo
echo "2. EC2 instance whose token PUT gets no answer (hop limit 1 behind a container bridge)"
start_fake --hang-token
r=$(time_runs "$bin" detect-address --root "$work/root" --output json)
report "kasm-bootstrap detect-address" "$r" "$(kb_result)"
stop_fake

echo
echo "3. No metadata service answers: 169.254.169.254 is dropped at the gateway"
make_cloud no
r=$(time_runs "$bin" detect-address --root "$work/root" --output json)
report "kasm-bootstrap detect-address (AWS chain)" "$r" "$(kb_result)"
saved_runs=$runs
runs=1
r=$(time_runs timeout "$curl_cap" curl -s http://169.254.169.254/latest/meta-data/local-ipv4)
runs=$saved_runs
read -r med _ _ <<<"$r"
if [ "$med" -ge $((curl_cap * 1000)) ]; then
  report "bash: curl -s .../meta-data/local-ipv4" "$r" "still waiting; killed at the ${curl_cap} s cap (curl's own connect timeout is 300 s)"
else
  report "bash: curl -s .../meta-data/local-ipv4" "$r" "'$(head -c 40 "$work/last.out")'"
fi
