#!/usr/bin/env bash
# Writes the generated reference from the code's own tables (tools/kb_reference.cpp):
#   docs/configuration.md                         the keys, commands and exit codes
#   docs/reference/kasm-bootstrap.schema.json     JSON Schema of the --config file
#   docs/reference/kasm-bootstrap.1               the man page (the .deb installs it)
#   docs/reference/kasm-bootstrap.bash-completion bash completion (the .deb installs it)
#
#   scripts/gen-reference.sh [KB_REFERENCE]          rewrite them (default: build/dev/tests/kb_reference,
#                                                    built first)
#   scripts/gen-reference.sh --check KB_REFERENCE    fail, with a diff, when one is stale (ctest reference_current)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
cd "$repo"

check=0
if [[ ${1:-} == --check ]]; then
  check=1
  shift
fi
tool="${1:-}"
if [[ -z $tool ]]; then
  ((check == 0)) || { echo "gen-reference: --check needs the kb_reference binary" >&2; exit 2; }
  cmake --build build/dev --target kb_reference -j"${KB_JOBS:-2}" >/dev/null
  tool=build/dev/tests/kb_reference
fi
[[ -x $tool ]] || { echo "gen-reference: $tool is not an executable" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
declare -A outputs=(
  [markdown]=docs/configuration.md
  [schema]=docs/reference/kasm-bootstrap.schema.json
  [man]=docs/reference/kasm-bootstrap.1
  [bash-completion]=docs/reference/kasm-bootstrap.bash-completion
)
stale=0
for format in markdown schema man bash-completion; do
  target="${outputs[$format]}"
  "$tool" "$format" >"$tmp/out" || { echo "gen-reference: $tool $format failed" >&2; exit 1; }
  if ((check)); then
    if ! cmp -s "$tmp/out" "$target"; then
      echo "gen-reference: $target is stale (run scripts/gen-reference.sh and commit it):" >&2
      diff -u "$target" "$tmp/out" | head -n 40 >&2 || true
      stale=1
    fi
  else
    mkdir -p "$(dirname "$target")"
    cp "$tmp/out" "$target"
    echo "wrote $target"
  fi
done
exit "$stale"
