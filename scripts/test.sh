#!/usr/bin/env bash
# Install everything (first run) and run the whole test suite, then the colcon build+test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
# The real vLLM CPU server for the remote-backend tests (own venv, first run ~3 min).
bash "$ROOT/scripts/setup_vllm.sh"
export COSMOS_PLANNER_VLLM=1
VENV="${COSMOS_PLANNER_VENV:-$ROOT/.venv}"
cd "$ROOT"
"$VENV/bin/python" -m pytest test -q -ra "$@"
bash "$ROOT/scripts/colcon_check.sh"
