#!/usr/bin/env bash
# Start, stop or query a local vLLM server (CPU build, .venv-vllm) for the OpenAI backend.
#   scripts/vllm_server.sh start [MODEL_DIR] [PORT]   # default: tiny checkpoint, port 8000
#   scripts/vllm_server.sh stop                       # kills the server's process group
#   scripts/vllm_server.sh status [PORT]
# Extra flags after the positional ones go to `python -m cosmos_planner.backends.openai.vllm_server start`
# (e.g. --reasoning-parser qwen3 --served-model-name NAME). The pid file and log live in
# runs/ (COSMOS_PLANNER_VLLM_PIDFILE / COSMOS_PLANNER_VLLM_LOG override). The server uses
# about 3 GiB of memory and the CPU: stop it when done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COSMOS_PLANNER_VENV:-$ROOT/.venv}"
PIDFILE="${COSMOS_PLANNER_VLLM_PIDFILE:-$ROOT/runs/vllm_server.pid}"
LOG="${COSMOS_PLANNER_VLLM_LOG:-$ROOT/runs/vllm_server.log}"
ACTION="${1:-}"
shift || true
case "$ACTION" in
  start)
    bash "$ROOT/scripts/setup_vllm.sh"
    MODEL_ARGS=()
    if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then MODEL_ARGS=(--model "$1"); shift; fi
    PORT=8000
    if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then PORT="$1"; shift; fi
    exec "$VENV/bin/python" -m cosmos_planner.backends.openai.vllm_server start --port "$PORT" \
      --pidfile "$PIDFILE" --log "$LOG" "${MODEL_ARGS[@]}" "$@"
    ;;
  stop)
    exec "$VENV/bin/python" -m cosmos_planner.backends.openai.vllm_server stop --pidfile "$PIDFILE"
    ;;
  status)
    exec "$VENV/bin/python" -m cosmos_planner.backends.openai.vllm_server status --port "${1:-8000}"
    ;;
  *)
    sed -n '2,9p' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
