#!/usr/bin/env bash
# Style and static analysis, as CI runs them (scripts/test.sh):
#   clang-format  every tracked C++ file must already be formatted (.clang-format)
#   clang-tidy    every file under src/ must pass the checks in .clang-tidy, with the
#                 flags from build/dev/compile_commands.json (configured here if missing)
#
#   scripts/lint.sh                     both (clang-tidy as --tidy)
#   scripts/lint.sh --format            only clang-format (seconds)
#   scripts/lint.sh --tidy [--record]   clang-tidy over every file under src/ whose key is
#                                       not in scripts/tidy-record.txt: each file that
#                                       changed, or whose project headers, compile flags,
#                                       .clang-tidy or clang-tidy version changed since it
#                                       was last found clean (keys: scripts/tidy_keys.py)
#   scripts/lint.sh --tidy-all [--record]   clang-tidy over every file under src/ (about
#                                       4 min on 2 cores); the full pass
#   scripts/lint.sh --tidy FILE...      only these files
#   --record  after a clean pass, write every clean file's key to scripts/tidy-record.txt
#             (commit it with the change: then CI checks only what changed after it)
# A file is checked whenever it changes: a stale or missing record only means more files
# are checked, never fewer. Fix formatting with: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all
scope=changed
record=0
tidy_files=()
while (($#)); do
  case "$1" in
    --format) mode=format ;;
    --tidy) mode=tidy ;;
    --tidy-all) mode=tidy; scope=all ;;
    --record) record=1 ;;
    -*) echo "lint.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
    *) tidy_files+=("$1"); scope=given ;;
  esac
  shift
done
readonly record_file=scripts/tidy-record.txt

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
  db_dir=build/dev
  db=$db_dir/compile_commands.json
  if [[ ! -f $db ]]; then
    # Configuring writes the compilation database (one entry per file; the CI builds are
    # unity builds, whose databases name the batches instead) and compiles nothing.
    cmake --preset dev >/dev/null || { echo "lint.sh: clang-tidy needs $db: 'cmake --preset dev' failed" >&2; exit 2; }
  fi
  mapfile -t all_src < <(git ls-files 'src/*.cpp')
  declare -A key_of=()
  while read -r key file; do key_of[$file]=$key; done < <(python3 scripts/tidy_keys.py "$db_dir" "${all_src[@]}")
  if ((${#key_of[@]} != ${#all_src[@]})); then
    echo "lint.sh: scripts/tidy_keys.py gave ${#key_of[@]} keys for ${#all_src[@]} files (its message is above)" >&2
    exit 2
  fi
  declare -A recorded=()
  if [[ -f $record_file ]]; then
    while read -r key file; do [[ $key == \#* || -z $key ]] || recorded[$file]=$key; done <"$record_file"
  fi
  case $scope in
    all) tidy_files=("${all_src[@]}") ;;
    changed)
      tidy_files=()
      for f in "${all_src[@]}"; do [[ "${recorded[$f]:-}" == "${key_of[$f]}" ]] || tidy_files+=("$f"); done
      echo "lint.sh: clang-tidy: ${#tidy_files[@]} of ${#all_src[@]} files changed since $record_file (the rest were found clean with the same key)"
      ;;
  esac
fi

write_record() {
  {
    echo "# clang-tidy found these files clean with these keys (scripts/tidy_keys.py); written by"
    echo "# 'scripts/lint.sh --tidy --record'. CI re-checks every file whose key is not here."
    for f in "${all_src[@]}"; do
      if [[ "${recorded[$f]:-}" == "${key_of[$f]}" ]] || [[ " ${tidy_files[*]} " == *" $f "* ]]; then
        echo "${key_of[$f]} $f"
      fi
    done
  } >"$record_file"
  echo "lint.sh: clang-tidy: wrote $record_file ($(grep -vc '^#' "$record_file") files)"
}

if [[ $mode != format ]] && ((${#tidy_files[@]} == 0)); then
  echo "lint.sh: clang-tidy: nothing to check"
  ((record)) && write_record
elif [[ $mode != format ]]; then
  log=$(mktemp "${TMPDIR:-/tmp}/kb-tidy.XXXXXX")
  trap 'rm -f "$log"' EXIT
  start=$SECONDS
  # run-clang-tidy takes regexes; anchor each path so src/a.cpp does not also match src/ba.cpp.
  regexes=()
  for f in "${tidy_files[@]}"; do regexes+=("$(realpath "$f" | sed 's/[.+]/\\&/g')\$"); done
  rc=0
  # run-clang-tidy 14 always asks for colour; strip it so the log can be grepped.
  run-clang-tidy -quiet -j"$(nproc)" -p "$db_dir" "${regexes[@]}" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$log" ||
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
    ((record)) && write_record
  fi
fi

exit $status
