#!/usr/bin/env bash
# Runner hook ACTIONS_RUNNER_HOOK_JOB_STARTED: before a job, stop engines earlier killed runs left behind, then
# refuse to start when GPUs are still busy (a benchmark on a shared GPU measures the neighbour, not the config).
#
# Install on each self-hosted GPU runner, in the runner's .env file:
#   ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/inference-autotuner/action/hooks/job-started.sh
#   ACTIONS_RUNNER_HOOK_JOB_COMPLETED=/opt/inference-autotuner/action/hooks/job-completed.sh
#   AUTOTUNER_HOOK_PYTHON=/opt/inference-autotuner/venv/bin/python      # has inference-autotuner installed
#   AUTOTUNER_HOOK_ALLOW_BUSY_GPU=0                                      # 1: only warn when GPUs are busy
set -uo pipefail
# shellcheck source=action/hooks/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

reap_leftovers
busy="$(busy_gpus)"
if [ -n "$busy" ]; then
  echo "autotuner hook: GPUs are busy before the job starts (gpu, pid, process, memory):"
  echo "$busy"
  if [ "${AUTOTUNER_HOOK_ALLOW_BUSY_GPU:-0}" != "1" ]; then
    echo "autotuner hook: refusing to run: measurements on a busy GPU are wrong (AUTOTUNER_HOOK_ALLOW_BUSY_GPU=1 to only warn)"
    exit 1
  fi
fi
echo "autotuner hook: GPUs free"
exit 0
