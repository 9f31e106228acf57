#!/usr/bin/env bash
# Run every property-based test with NEW random examples, again and again, for N minutes.
# CI runs the same tests derandomized (the `ci` hypothesis profile, test/conftest.py): the
# same examples every run. This command looks for examples nobody has tried yet and prints
# each failing one with hypothesis's reproduction blob (`@reproduce_failure(...)`); add it
# to the test as an explicit `@example` once the cause is fixed.
# Usage: bash scripts/fuzz.sh [--minutes N] [pytest args...]   (default: 10 minutes)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COSMOS_PLANNER_VENV:-$ROOT/.venv}"
MINUTES=10
if [ "${1:-}" = "--minutes" ]; then MINUTES="$2"; shift 2; fi
cd "$ROOT"
bash scripts/setup_env.sh
mapfile -t FILES < <(grep -rl --include='test_*.py' 'from hypothesis import' test)
LOG="$(mktemp -d)/fuzz"
deadline=$(( $(date +%s) + MINUTES * 60 ))
rounds=0; failed=0
echo "[fuzz] ${#FILES[@]} files with property tests, ${MINUTES} min, logs in ${LOG}.N" >&2
while [ "$(date +%s)" -lt "$deadline" ]; do
  rounds=$((rounds + 1))
  if ! HYPOTHESIS_PROFILE=fuzz "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
      "${FILES[@]}" "$@" > "$LOG.$rounds" 2>&1; then
    failed=$((failed + 1))
    echo "[fuzz] round $rounds FAILED:" >&2
    grep -E -A 12 'Falsifying example|reproduce_failure|^FAILED' "$LOG.$rounds" >&2
  fi
done
echo "[fuzz] $rounds rounds, $failed with failures" >&2
[ "$failed" -eq 0 ]
