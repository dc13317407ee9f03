#!/usr/bin/env python3
"""What each library adds to the static binary, from the linker's map file.

  bench/binary_size.py [BUILD_DIR]      (default: build/static)

The static build writes BUILD_DIR/kasm-bootstrap.map (-Wl,-Map, CMakeLists.txt). Every
input section that survived --gc-sections is counted against the archive (or object) it
came from: code (.text), constants (.rodata), data (.data/.bss are not in the file, so
.bss is left out), unwind tables (.eh_frame, .gcc_except_table). Prints the table and the
stripped size of BUILD_DIR/kasm-bootstrap; measures, asserts nothing.
"""
import collections
import os
import re
import sys

KINDS = (("text", r"\.text"), ("rodata", r"\.rodata"), ("data", r"\.(data|tdata|init_array|fini_array)"),
         ("unwind", r"\.(eh_frame|gcc_except_table)"))


def kind_of(section):
    for name, pattern in KINDS:
        if re.match(pattern, section):
            return name
    return None


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "build", "static")
    map_path = os.path.join(build, "kasm-bootstrap.map")
    binary = os.path.join(build, "kasm-bootstrap")
    if not os.path.isfile(map_path):
        sys.exit(f"binary size: no {map_path} (build the static preset first)")
    sizes = collections.defaultdict(collections.Counter)
    started = False
    pending = None  # a section name too long for its line: its address/size come next
    with open(map_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("Linker script and memory map"):
                started = True
                continue
            if not started:
                continue
            m = re.match(r"^ (\.\S+)\s*$", line)
            if m:
                pending = m.group(1)
                continue
            m = re.match(r"^ (\.\S+)?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)", line)
            if not m:
                continue
            section = m.group(1) or pending
            pending = None
            kind = kind_of(section or "")
            if kind is None:
                continue
            # "/usr/lib/x86_64-linux-gnu/libc.a(memcpy.o)" -> libc.a
            owner = os.path.basename(re.sub(r"\(.*", "", m.group(3)))
            sizes[owner][kind] += int(m.group(2), 16)
    rows = sorted(sizes.items(), key=lambda kv: -sum(kv[1].values()))
    total = sum(sum(c.values()) for c in sizes.values())
    print(f"{'input':<22} {'MB':>7} {'share':>6}  " + " ".join(f"{k:>7}" for k, _ in KINDS))
    for owner, c in rows:
        mb = sum(c.values()) / 1e6
        if mb < 0.005:
            continue
        print(f"{owner:<22} {mb:7.3f} {100 * mb * 1e6 / total:5.1f}%  " +
              " ".join(f"{c[k] / 1e6:7.3f}" for k, _ in KINDS))
    print(f"{'sections total':<22} {total / 1e6:7.3f}")
    if os.path.isfile(binary):
        print(f"{'stripped binary':<22} {os.path.getsize(binary) / 1e6:7.3f}  ({binary})")


if __name__ == "__main__":
    main()
