#!/usr/bin/env bash
# Install everything (first run) and run the main job end to end on the embedded default.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
VENV="${COSMOS_PLANNER_VENV:-$ROOT/.venv}"
cd "$ROOT"
exec "$VENV/bin/cosmos-planner" demo --out "${1:-runs/demo}"
