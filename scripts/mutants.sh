#!/usr/bin/env bash
# Mutation testing: do the suites fail when the code is wrong?
#
# Each file tests/mutants/NAME.patch plants one small bug in src/ (a unified diff, -p1)
# and names, in its header, the tests that must catch it:
#   Tests: <ctest -R regex>        the ctest entries to run against the mutant
#   Why: <one line>                the guarantee the mutant breaks
# For each mutant the harness applies the patch to a private copy of the tree
# (build/mutants/tree; the checkout is never touched), rebuilds incrementally, runs the
# named tests, and reverts the patch. A mutant is "killed" when a named test fails,
# "survived" when they all pass; a patch that no longer applies or builds is reported as
# such and counts as neither. The report ends with the score, killed / (killed + survived).
#
#   scripts/mutants.sh                 every mutant (about 15 s each plus its tests)
#   scripts/mutants.sh NAME...         only these (file names without .patch)
#   KB_TEST_MUTANTS=1 scripts/test.sh  the test command with this as its last stage
#
# Exit status: 0 when every mutant was killed, 1 when one survived or could not be
# applied or built, 2 on a usage error. Needs what the suites need (root for most).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$repo/build/mutants
tree=$work/tree
build=$work/build
jobs=$(nproc)

mutants=()
if (($#)); then
  for name in "$@"; do
    [[ -f tests/mutants/$name.patch ]] || { echo "mutants.sh: no tests/mutants/$name.patch" >&2; exit 2; }
    mutants+=("tests/mutants/$name.patch")
  done
else
  mapfile -t mutants < <(ls tests/mutants/*.patch)
fi
((${#mutants[@]})) || { echo "mutants.sh: no mutants under tests/mutants/" >&2; exit 2; }

# A private copy of the work tree (tracked files and untracked ones git does not ignore),
# and a build of it:
# Debug (-O0) without unity batches, so a mutant recompiles one file.
# tar keeps the modification times, so a second run rebuilds only what changed.
rm -rf "$tree"
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$tree"
cmake -S "$tree" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 >/dev/null
echo "mutants.sh: building the unmutated tree"
cmake --build "$build" -j"$jobs" >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }

field() { sed -n "s/^$1: //p" "$2" | head -n1; }

killed=0
survived=0
broken=0
report=()
for patch in "${mutants[@]}"; do
  name=$(basename "$patch" .patch)
  tests=$(field Tests "$patch")
  why=$(field Why "$patch")
  if [[ -z $tests ]]; then
    report+=("$(printf '%-34s %s' "$name" "BROKEN: no 'Tests:' line")")
    broken=$((broken + 1))
    continue
  fi
  if ! patch -d "$tree" -p1 --forward --silent <"$patch" >"$work/patch.log" 2>&1; then
    report+=("$(printf '%-34s %s' "$name" "BROKEN: does not apply ($(head -n1 "$work/patch.log"))")")
    broken=$((broken + 1))
    continue
  fi
  t0=$SECONDS
  outcome=""
  if ! cmake --build "$build" -j"$jobs" >"$work/$name.build.log" 2>&1; then
    outcome="BROKEN: does not build (build/mutants/$name.build.log)"
    broken=$((broken + 1))
  elif (cd "$build" && ctest -R "$tests" -j"$jobs" --timeout 300 >"$work/$name.test.log" 2>&1); then
    if grep -qE '^No tests were found' "$work/$name.test.log"; then
      outcome="BROKEN: 'Tests: $tests' matches no test"
      broken=$((broken + 1))
    else
      outcome="SURVIVED ($why)"
      survived=$((survived + 1))
    fi
  else
    outcome="killed by $(grep -cE '\*\*\*(Failed|Exception|Timeout)' "$work/$name.test.log") test(s)"
    killed=$((killed + 1))
  fi
  patch -d "$tree" -p1 -R --silent <"$patch" >/dev/null
  line=$(printf '%-34s %-7s %s' "$name" "$((SECONDS - t0))s" "$outcome")
  echo "mutants.sh: $line"
  report+=("$line")
done
# Leave the copy unmutated and built for the next run.
cmake --build "$build" -j"$jobs" >/dev/null 2>&1 || true

echo
echo "mutants.sh: ${#mutants[@]} mutants"
printf '  %s\n' "${report[@]}"
total=$((killed + survived))
if ((total > 0)); then
  echo "mutants.sh: score $killed/$total killed ($((100 * killed / total)) %), $broken broken"
else
  echo "mutants.sh: no mutant ran ($broken broken)"
fi
((survived == 0 && broken == 0))
