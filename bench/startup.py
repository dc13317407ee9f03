#!/usr/bin/env python3
"""Whole-job benchmark: the stock bash startup script against `kasm-bootstrap run`, in the
same invocation, against the same fake AWS world (tests/e2e/world.py: network namespaces,
fake IMDS, HTTPS release server, fake manager, a real dockerd, the fake installer that
starts real kasm_agent/kasm_proxy containers). Prints numbers only; asserts no time.

  bench/startup.py [BINARY]        (default: build/static/kasm-bootstrap, the release binary; or $KB_BINARY)
  env: ROUNDS (3), SWAP_GB (8, the stock size; 0 = neither tool makes swap),
       RELEASE_MB (2: the fake tarball's padding), DEMO (1: also run the bash script once
       with IMDSv2 required and show the address it registers)

Each round: a fresh instance root -> the rendered bash script (tests/bench_baseline/);
a fresh instance root -> `kasm-bootstrap run`. Per run:
  wall       from spawn to exit, measured here (both run under `ip netns exec`)
  installer  Kasm's own time: the fake install.sh's and bin/start's (their timing records)
  overhead   wall - installer: what the bootstrap logic itself costs
  maxrss     ru_maxrss from wait4() (the number GNU time's %M prints): the largest single
             process anywhere in the tree, the kernel's max over every reaped descendant
  top        peak RSS (VmHWM) of the top process itself: bash, or kasm-bootstrap
  treesum    the largest sum of RSS over all processes of the run's session, sampled every
             50 ms (a lower bound of the true peak; it includes the installer's processes)
The overhead of kasm-bootstrap is then split along its critical path (OVERHEAD_PARTS):
process start, the steps before install-agent, each exec and reaping of install.sh and
bin/start, the steps between and after them, and the exit.
IMDS runs with tokens optional during the timed rounds so that the stock script's IMDSv1
curl gets the address and both tools complete (kasm-bootstrap uses IMDSv2 either way).
Swap: both create a real swap file of SWAP_GB under their root and swapon it (swapped off
and deleted after each run). Everything (world, swap, mounts) is removed on exit/Ctrl-C.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
import world  # noqa: E402

BASELINE = os.path.join(TOP, "tests", "bench_baseline")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def session_rss_kb(sid):
    """Sum of the RSS of every process whose session id is sid."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp session ... rss is field 24.
        rest = stat[stat.rfind(b")") + 2:].split()
        if int(rest[3]) == sid:
            total += int(rest[21]) * PAGE_KB
    return total


def own_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Measured:
    pass


def measure(argv, env, log_path):
    """Runs argv in its own session; returns wall seconds, rc and the RSS figures."""
    m = Measured()
    with open(log_path, "w") as log:
        start = time.monotonic()
        m.spawned = time.time()  # wall clock, to line up with the log's and the fake's stamps
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        peaks = {"top": 0, "tree": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                peaks["top"] = max(peaks["top"], own_hwm_kb(proc.pid))
                peaks["tree"] = max(peaks["tree"], session_rss_kb(proc.pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 instead of Popen.wait: its rusage carries ru_maxrss of the whole reaped tree.
        _, status, usage = os.wait4(proc.pid, 0)
        m.wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    m.rc = proc.returncode
    m.maxrss = usage.ru_maxrss
    m.top = peaks["top"]
    m.treesum = peaks["tree"]
    return m


def installer_seconds(case):
    """Kasm's own time in the run: install.sh's and bin/start's (fake-installer/timing and
    start.timing), counted once where install.sh ran bin/start itself (the stock script)."""
    intervals = []
    for record in ("/fake-installer/timing", "/fake-installer/start.timing"):
        text = case.read(record) or ""
        marks = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        if "start" in marks and "end" in marks:
            intervals.append((float(marks["start"]), float(marks["end"])))
    if not intervals:
        return None
    intervals.sort()
    total, (lo, hi) = 0.0, intervals[0]
    for a, b in intervals[1:]:
        if a > hi:
            total, lo, hi = total + hi - lo, a, b
        else:
            hi = max(hi, b)
    return total + hi - lo


# Where kasm-bootstrap's overhead goes, from its own log (console lines stamped to the ms)
# and the fake's timing records: each gap between two marks on the critical path.
OVERHEAD_PARTS = (
    ("process start -> first log line", "spawn", "first"),
    ("before install-agent (detect/swap/fetch/...)", "first", "ia_start"),
    ("install-agent: exec -> install.sh started", "ia_start", "i0"),
    ("install.sh ended -> install-agent done", "i1", "ia_done"),
    ("configure-agent, install-certificates", "ia_done", "ss_start"),
    ("start-services: exec -> bin/start started", "ss_start", "s0"),
    ("bin/start ended -> start-services done", "s1", "ss_done"),
    ("block-metadata, verify-health, summary", "ss_done", "finish"),
    ("run finished -> process exit", "finish", "exit"),
)
LOG_MARKS = (("first", r" kasm-bootstrap \S+ run,"), ("ia_start", r"install-agent: started"),
             ("ia_done", r"install-agent: done"), ("ss_start", r"start-services: started"),
             ("ss_done", r"start-services: done"), ("finish", r"run finished"))


def overhead_parts(case, m, log_path):
    """{part: seconds} for one kasm-bootstrap run, or None if a mark is missing. The log's
    stamps are local time of day (HH:MM:SS.mmm); the fake's are epoch seconds."""
    midnight = time.mktime(time.localtime(m.spawned)[:3] + (0, 0, 0, 0, 0, -1))
    marks = {"spawn": m.spawned, "exit": m.spawned + m.wall}
    for name, record in (("/fake-installer/timing", "i"), ("/fake-installer/start.timing", "s")):
        stamps = dict(line.split() for line in (case.read(name) or "").splitlines() if len(line.split()) == 2)
        if "start" not in stamps or "end" not in stamps:
            return None
        marks[record + "0"], marks[record + "1"] = float(stamps["start"]), float(stamps["end"])
    with open(log_path, errors="replace") as f:
        for line in f:
            stamp = re.match(r"^[IWED] (\d\d):(\d\d):(\d\d\.\d\d\d) ", line)
            if not stamp:
                continue
            at = midnight + int(stamp.group(1)) * 3600 + int(stamp.group(2)) * 60 + float(stamp.group(3))
            for key, pattern in LOG_MARKS:
                if key not in marks and re.search(pattern, line):
                    marks[key] = at
    if any(a not in marks or b not in marks for _, a, b in OVERHEAD_PARTS):
        return None
    return {label: marks[b] - marks[a] for label, a, b in OVERHEAD_PARTS}


def swap_off_under(root):
    """Swaps off and deletes every swap area under root (what a run made)."""
    try:
        with open("/proc/swaps") as f:
            areas = [line.split()[0] for line in f.read().splitlines()[1:]]
    except OSError:
        return
    for area in areas:
        if area.startswith(root + "/"):
            subprocess.run(["swapoff", area], capture_output=True)
            try:
                os.unlink(area)
            except OSError:
                pass


def prepare_root(case, swap_gb):
    """What both tools read under a test root to decide about swap: no swap active yet."""
    case.write("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
    with open("/proc/meminfo") as f:
        case.write("/proc/meminfo", f.read())
    os.makedirs(case.path("/var"), exist_ok=True)


def run_bash(w, case, swap_gb, out_dir):
    script = os.path.join(case.dir, "startup.sh")
    pki = os.path.join(case.dir, "operator-pki")
    os.makedirs(pki, exist_ok=True)
    cert, key = os.path.join(pki, "nginx.crt"), os.path.join(pki, "nginx.key")
    with open(cert, "w") as f:
        f.write(w.nginx_cert_pem)
    with open(key, "w") as f:
        f.write(w.nginx_key_pem)
    cfg = case.config
    world.sh(sys.executable, os.path.join(BASELINE, "render.py"), "--out", script,
             "--set", f"server_hostname={cfg['server_hostname']}",
             "--set", f"server_external_fqdn={cfg['external_fqdn']}",
             "--set", f"manager_token={cfg['manager_token']}",
             "--set", f"upstream_auth_address={cfg['manager_address']}",
             "--set", f"server_id={cfg['server_id']}",
             "--set", f"provider_name={cfg['provider']}",
             "--set", f"kasm_build_url={cfg['release_url']}",
             "--set-file", f"nginx_cert_in={cert}", "--set-file", f"nginx_key_in={key}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KASM_BOOTSTRAP_", "KASM_FAKE_", "KB_"))}
    env.update({
        "KB_BASELINE_ROOT": case.root,
        "KB_BASELINE_CA": w.ca_cert,
        "KB_BASELINE_DOCKER_HOST": "unix://" + w.docker_socket,
        "KASM_FAKE_ROOT": case.root,
        # The fake release talks to the engine through the root's socket (tests/fakes/README.md);
        # the real installer's `docker` finds /var/run/docker.sock the same way.
        "DOCKER_HOST": "unix://" + case.path("/var/run/docker.sock"),
        "PATH": world.FAKE_BIN + ":" + env.get("PATH", "/usr/bin:/bin"),
    })
    if swap_gb:
        env["KB_BASELINE_SWAP_GB"] = str(swap_gb)
    else:
        # No swap wanted: make the stock check see an active swap area, as on a host with one.
        case.write("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/null partition 1 0 -2\n")
    argv = ["ip", "netns", "exec", w.instance, "bash", script]
    try:
        return measure(argv, env, os.path.join(out_dir, "bash.log"))
    finally:
        swap_off_under(case.root)


def run_kb(w, case, swap_gb, out_dir):
    cfg = dict(case.config)
    cfg["swap_size"] = f"{swap_gb}G" if swap_gb else "off"
    path = os.path.join(case.dir, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KASM_BOOTSTRAP_", "KASM_FAKE_", "KB_"))}
    env.update({
        "KASM_FAKE_ROOT": case.root,
        "PATH": world.FAKE_BIN + ":" + env.get("PATH", "/usr/bin:/bin"),
        # Lets swapon(2) enable the file made under the test root (bench/swap.sh does the same).
        "KB_TEST_SWAPON_UNDER_ROOT": "1",
    })
    argv = ["ip", "netns", "exec", w.instance, w.binary, "run", "--root", case.root, "--config", path]
    try:
        return measure(argv, env, os.path.join(out_dir, "kb.log"))
    finally:
        swap_off_under(case.root)


def check_registered(case, who, m, log):
    argv = case.installer_argv() or []
    if m.rc != 0 or case.installer_runs() != 1:
        with open(log) as f:
            tail = f.read()[-3000:]
        sys.exit(f"startup bench: {who} failed (rc {m.rc}, installer runs {case.installer_runs()}):\n{tail}")
    m.installer = installer_seconds(case)
    if m.installer is None:
        sys.exit(f"startup bench: {who}: the fake installer left no timing record")
    m.overhead = m.wall - m.installer
    # What the agent registers with: the agent configuration's public_hostname (kasm-bootstrap
    # gives install.sh a placeholder and writes the address itself).
    config = case.agent_config() or {}
    m.address = (config.get("agent") or {}).get("public_hostname") or "?"
    status = case.status() or {}
    m.steps = {st["id"]: st.get("duration_ms", 0.0) for st in status.get("steps", [])}


def row(label, m):
    return (f"{label:<24} {m.wall:8.2f} {m.installer:9.2f} {m.overhead:9.3f} {m.maxrss:10d} {m.top:9d} "
            f"{m.treesum:9d}  {m.address}")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KB_BINARY",
                                                                  os.path.join(TOP, "build", "static", "kasm-bootstrap"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"startup bench: no kasm-bootstrap binary at {binary} (give its path)")
    rounds = int(os.environ.get("ROUNDS", "3"))
    swap_gb = int(os.environ.get("SWAP_GB", "8"))
    pad = int(float(os.environ.get("RELEASE_MB", "2")) * (1 << 20))
    demo = os.environ.get("DEMO", "1") != "0"
    try:
        world.check_prerequisites()
    except world.Unavailable as e:
        sys.exit(f"startup bench: cannot build the fake world here: {e}")

    with world.World(binary, pad_bytes=pad) as w:
        # A swap file must be swapped off before World.stop deletes the case dirs: once
        # unlinked, an active swap file can no longer be named to swapoff.
        def on_signal(signum, frame):
            for c in w.cases:
                c.kill_strays()
                swap_off_under(c.root)
            w._on_signal(signum, frame)

        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, on_signal)
        out_dir = os.path.join(w.dir, "bench")
        os.makedirs(out_dir)
        w.restart_imds("--tokens", "optional")
        print(f"startup bench: {rounds} rounds; binary {w.binary}; swap {swap_gb} GiB; release "
              f"{os.path.getsize(w.release_file)} bytes; IMDS tokens optional")
        print(f"{'run':<24} {'wall s':>8} {'install s':>9} {'overhead':>9} {'maxrss KiB':>10} {'top KiB':>9} "
              f"{'tree KiB':>9}  agent address")
        results = {"bash": [], "kb": []}
        try:
            for n in range(1, rounds + 1):
                for who, runner, label in (("bash", run_bash, "stock bash script"),
                                           ("kb", run_kb, "kasm-bootstrap run")):
                    case = w.new_case(f"{who}{n}")
                    prepare_root(case, swap_gb)
                    m = runner(w, case, swap_gb, out_dir)
                    check_registered(case, label, m, os.path.join(out_dir, f"{who}.log"))
                    if who == "kb":
                        m.parts = overhead_parts(case, m, os.path.join(out_dir, "kb.log"))
                    results[who].append(m)
                    print(row(f"round {n}: {label}", m), flush=True)
                    case.cleanup()
            med = {who: {k: statistics.median(getattr(m, k) for m in ms)
                         for k in ("wall", "installer", "overhead", "maxrss", "top", "treesum")}
                   for who, ms in results.items()}
            print()
            print(f"{'median':<24} {'wall s':>8} {'install s':>9} {'overhead':>9} {'maxrss KiB':>10} {'top KiB':>9} "
                  f"{'tree KiB':>9}")
            for who, label in (("bash", "stock bash script"), ("kb", "kasm-bootstrap run")):
                d = med[who]
                print(f"{label:<24} {d['wall']:8.2f} {d['installer']:9.2f} {d['overhead']:9.3f} "
                      f"{int(d['maxrss']):10d} {int(d['top']):9d} {int(d['treesum']):9d}")
            b, k = med["bash"], med["kb"]
            print()
            print(f"overhead: bash {b['overhead']:.3f} s, kasm-bootstrap {k['overhead']:.3f} s -> "
                  f"{b['overhead'] / k['overhead']:.1f}x less (goal: <= 0.1 s)")
            print(f"          bash without its fixed `sleep 10`: {b['overhead'] - 10:.3f} s -> "
                  f"{(b['overhead'] - 10) / k['overhead']:.1f}x less")
            steps = list(results["kb"][0].steps)
            if steps:
                print("kasm-bootstrap steps (median ms, from its status.json; some run concurrently): " +
                      ", ".join(f"{st} {statistics.median(m.steps.get(st, 0.0) for m in results['kb']):.0f}"
                                for st in steps))
            parts = [m.parts for m in results["kb"] if getattr(m, "parts", None)]
            if parts:
                print(f"kasm-bootstrap overhead by part (median ms of {len(parts)} rounds; the critical path, "
                      "from its log and the fake's timing records):")
                for label, _, _ in OVERHEAD_PARTS:
                    print(f"  {statistics.median(p[label] for p in parts) * 1000:6.1f}  {label}")
            print(f"wall:     bash {b['wall']:.2f} s, kasm-bootstrap {k['wall']:.2f} s -> "
                  f"{b['wall'] / k['wall']:.1f}x less")

            if demo:
                w.restart_imds()  # back to IMDSv2 required (HttpTokens=required)
                case = w.new_case("bashv2")
                prepare_root(case, 0)
                m = run_bash(w, case, 0, out_dir)
                argv = case.installer_argv() or []
                addr = argv[argv.index("-p") + 1] if "-p" in argv else "(installer not run)"
                print()
                print(f"IMDSv2 required (HttpTokens=required): stock bash script exit {m.rc}; the IMDSv1 curl got "
                      f"HTTP 401 and the script passed -p {addr!r} to install.sh")
                case.cleanup()
        finally:
            for c in w.cases:
                c.kill_strays()
                swap_off_under(c.root)


if __name__ == "__main__":
    main()
