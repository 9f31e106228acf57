#!/usr/bin/env bash
# Create (or reuse) the project venv and install the package with every extra.
# Idempotent: a second run only checks. Needs Python 3.10-3.12 and the package registries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COSMOS_PLANNER_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.cosmos_planner_installed"
WANT="$(cat "$ROOT/setup.py" "$ROOT/scripts/constraints.txt" | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
echo "[setup] creating $VENV (first run: about 4 minutes, mostly torch from local disk)" >&2
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel 'setuptools<80' >&2
# torch and torchvision first and explicitly: both lie on this machine's disk (see README).
"$VENV/bin/python" -m pip install -q -c "$ROOT/scripts/constraints.txt" torch torchvision >&2
"$VENV/bin/python" -m pip install -q -c "$ROOT/scripts/constraints.txt" \
  -e "$ROOT[all,test]" >&2
echo "$WANT" > "$STAMP"
echo "[setup] done" >&2
