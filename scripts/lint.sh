#!/usr/bin/env bash
# Style and static analysis, as CI runs them (scripts/test.sh):
#   clang-format  every tracked C++ file must already be formatted (.clang-format)
#   clang-tidy    every file under src/ must pass the checks in .clang-tidy, with the
#                 flags from build/ci/compile_commands.json (configure the ci preset first)
#   scripts/lint.sh                 both
#   scripts/lint.sh --format        only clang-format (seconds)
#   scripts/lint.sh --tidy FILE...  only clang-tidy, only these files
# Fix formatting with: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all
tidy_files=()
case "${1:-}" in
  --format) mode=format ;;
  --tidy) mode=tidy; shift; tidy_files=("$@") ;;
  "") ;;
  *) echo "lint.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
esac

status=0

if [[ $mode != tidy ]]; then
  mapfile -t cxx < <(git ls-files '*.cpp' '*.hpp' '*.h')
  if clang-format --dry-run --Werror "${cxx[@]}"; then
    echo "lint.sh: clang-format: ${#cxx[@]} files formatted"
  else
    echo "lint.sh: clang-format: the files above need 'clang-format -i'" >&2
    status=1
  fi
fi

if [[ $mode != format ]]; then
  db=build/ci/compile_commands.json
  if [[ ! -f $db ]]; then
    echo "lint.sh: clang-tidy needs $db: run 'cmake --preset ci' first" >&2
    exit 2
  fi
  ((${#tidy_files[@]})) || mapfile -t tidy_files < <(git ls-files 'src/*.cpp')
  log=$(mktemp "${TMPDIR:-/tmp}/kb-tidy.XXXXXX")
  trap 'rm -f "$log"' EXIT
  start=$SECONDS
  # run-clang-tidy takes regexes; anchor each path so src/a.cpp does not also match src/ba.cpp.
  regexes=()
  for f in "${tidy_files[@]}"; do regexes+=("$(realpath "$f" | sed 's/[.+]/\\&/g')\$"); done
  rc=0
  # run-clang-tidy 14 always asks for colour; strip it so the log can be grepped.
  run-clang-tidy -quiet -j"$(nproc)" -p build/ci "${regexes[@]}" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$log" ||
    rc=$?
  # Findings are "file:line:col: warning|error: ... [check]"; the rest is progress noise.
  if grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log" >/dev/null; then
    grep -E -A3 '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log" >&2
    echo "lint.sh: clang-tidy: $(grep -cE '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log") finding(s) in ${#tidy_files[@]} files" >&2
    status=1
  elif ((rc != 0)); then
    tail -20 "$log" >&2
    echo "lint.sh: clang-tidy: run-clang-tidy failed (exit $rc) without a finding; its output ends above" >&2
    status=1
  else
    echo "lint.sh: clang-tidy: ${#tidy_files[@]} files clean ($((SECONDS - start)) s)"
  fi
fi

exit $status
