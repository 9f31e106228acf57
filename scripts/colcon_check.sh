#!/usr/bin/env bash
# Prove the package works inside a ROS 2 workspace: colcon build, then colcon test (pytest)
# on the pure-core and lint tests, and resolve the installed share/ files via the ament index.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COSMOS_PLANNER_VENV:-$ROOT/.venv}"
WS="$(mktemp -d /tmp/cosmos_planner_ws.XXXXXX)"
trap 'rm -rf "$WS"' EXIT
# shellcheck disable=SC1091
. "$VENV/bin/activate"
cd "$WS"
echo "[colcon] build in $WS" >&2
colcon build --base-paths "$ROOT" --build-base build --install-base install \
  --event-handlers console_cohesion- summary+ >&2
# shellcheck disable=SC1091
set +u; . install/setup.bash; set -u
# The installed package (not the source tree) must find its config through the ament index.
(cd / && COSMOS_PLANNER_SHARE= python - <<'PY'
from pathlib import Path
import cosmos_planner, cosmos_planner.resources as r
share = r.share_dir()
assert '/install/' in str(share), share
assert (share / 'config' / 'planner.yaml').exists(), share
print('[colcon] installed package', Path(cosmos_planner.__file__).parent, 'share', share)
PY
)
test -x install/cosmos_planner/lib/cosmos_planner/planner_node
colcon test --base-paths "$ROOT" --build-base build --install-base install \
  --event-handlers console_cohesion- summary+ \
  --pytest-args -q -p no:cacheprovider -k 'test_lint.py or test_plan_schema.py or test_parser.py or test_ingest.py or test_buffer.py' >&2
colcon test-result --verbose --test-result-base build
