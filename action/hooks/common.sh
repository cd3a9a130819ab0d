#!/usr/bin/env bash
# Shared by the runner job hooks: find a Python that has inference-autotuner, and reap what killed runs left.
#
# Why a hook and not the action: a cancelled job is killed by the runner, and a composite action has no post
# step, so engines started in their own process group (or containers) by a killed `pytest --tune` can outlive it
# and hold the GPU for the next job. `autotuner reap` stops exactly those: entries whose owner process is gone
# (host, PID and start time recorded when they were started; containers by their autotuner.owner label). Nothing
# is ever killed by name.

autotuner_python() {
  # The interpreter to use: $AUTOTUNER_HOOK_PYTHON (set it in the runner's .env), else python3 if it has the tool.
  local candidate
  for candidate in "${AUTOTUNER_HOOK_PYTHON:-}" python3; do
    if [ -n "$candidate" ] && "$candidate" -c 'import autotuner' >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

reap_leftovers() {
  local python
  if ! python="$(autotuner_python)"; then
    echo "autotuner hook: no Python with inference-autotuner (set AUTOTUNER_HOOK_PYTHON in the runner's .env); nothing reaped"
    return 0
  fi
  echo "autotuner hook: reaping engines left by killed runs ($python -m autotuner reap)"
  "$python" -m autotuner reap || echo "autotuner hook: reap failed (exit $?)"
}

busy_gpus() {
  # Compute processes on any GPU, one per line (empty when free, or when there is no NVIDIA GPU on this runner).
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory --format=csv,noheader 2>/dev/null \
    | grep -v '^[[:space:]]*$' || true
}
