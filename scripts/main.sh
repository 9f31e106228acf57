#!/usr/bin/env bash
# Install everything (first run) and run the main job: one closed-loop MuJoCo episode with
# planner_node (embedded default backend) in the loop; outputs in runs/main (or $1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
VENV="${COSMOS_PLANNER_VENV:-$ROOT/.venv}"
cd "$ROOT"
exec "$VENV/bin/cosmos-planner" sim --main-job --out "${1:-runs/main}"
