#!/usr/bin/env bash
# Creates (idempotently) a virtual environment in which SGLang's flag parser imports, and prints its interpreter.
#
# SGLang cannot serve here (it needs a GPU), but its `ServerArgs` parser is what validates SGLang specs, and it
# imports on a CPU. A full `pip install sglang` is not an option on a CPU machine: 0.5.23 pins torch==2.14.1 (a
# CUDA build) and pulls flashinfer, cutlass, deep-ep, nvshmem ... (many GB). So this is a parser-only environment:
#   - torch's CPU build (2.13.0, the parser does not care about the pinned release),
#   - sglang itself without its dependencies,
#   - only what `sglang.srt.server_args` imports (found by importing it until it works; triton is one: 1 GB,
#     imported at the top of sglang.srt.utils.common).
#
#   python=$(bash .ci/sglang-env.sh)      # stdout: the interpreter path; progress on stderr
#
# Measured on a 2-core machine: about 70 s and 2.3 GB the first time (triton alone is 1 GB), instant afterwards.
#
# Settings: AUTOTUNER_SGLANG_VENV (default ~/.cache/autotuner/venvs/sglang), AUTOTUNER_SGLANG_SPEC (default
# sglang==0.5.23), AUTOTUNER_SGLANG_BASE (default python3), AUTOTUNER_SGLANG_PIP_ARGS (extra pip arguments).
set -euo pipefail

venv=${AUTOTUNER_SGLANG_VENV:-$HOME/.cache/autotuner/venvs/sglang}
spec=${AUTOTUNER_SGLANG_SPEC:-sglang==0.5.23}
base=${AUTOTUNER_SGLANG_BASE:-python3}
torch_spec=${AUTOTUNER_SGLANG_TORCH:-torch==2.13.0}
recipe=2  # bump when the steps below change, so existing venvs are brought up to date
read -r -a extra <<<"${AUTOTUNER_SGLANG_PIP_ARGS:-}"
imports=(numpy orjson psutil pybase64 requests packaging pillow starlette msgspec pydantic pyzmq tqdm ipython aiohttp
  triton huggingface_hub)  # huggingface_hub: launch_server imports it before parsing (--help needs it)
python="$venv/bin/python"
marker="$venv/.autotuner-ready"
want="$spec $torch_spec recipe $recipe"

log() { echo "sglang-env: $*" >&2; }
ready() { [ -x "$python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; }

if ready; then
  echo "$python"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"  # one installer at a time; the second finds the venv ready
flock 9
if ready; then
  echo "$python"
  exit 0
fi

started=$(date +%s)
[ -x "$python" ] || { log "creating $venv"; "$base" -m venv "$venv"; }
rm -f "$marker"
pip=("$python" -m pip --disable-pip-version-check --no-input)
"${pip[@]}" install --upgrade pip >&2
log "installing $torch_spec (CPU build) and what sglang's ServerArgs imports"
"${pip[@]}" install "${extra[@]}" "$torch_spec" "${imports[@]}" >&2
log "installing $spec without its dependencies (they are GPU builds)"
"${pip[@]}" install "${extra[@]}" --no-deps "$spec" >&2

log "checking: SGLang's parser answers through flagcheck.py"
flagcheck="$(cd "$(dirname "$0")/.." && pwd)/autotuner/engines/flagcheck.py"
echo '[["schedule-policy", ["--schedule-policy", "lpm"]]]' |
  "$python" -c "import runpy, sys; del sys.path[0]; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')" \
    "$flagcheck" sglang >&2
echo "$want" >"$marker"
log "ready in $(($(date +%s) - started)) s, $(du -sh "$venv" | cut -f1) on disk"
echo "$python"
