#!/usr/bin/env bash
# Runner hook ACTIONS_RUNNER_HOOK_JOB_COMPLETED: after every job, cancelled ones included, stop the engines a
# killed `pytest --tune` left running and report GPUs that are still busy (see job-started.sh for installing).
# Never fails the job: the job's own result is what it is; the next job's start hook refuses a busy GPU.
set -uo pipefail
# shellcheck source=action/hooks/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

reap_leftovers
busy="$(busy_gpus)"
if [ -n "$busy" ]; then
  echo "autotuner hook: GPUs still busy after the job (gpu, pid, process, memory):"
  echo "$busy"
fi
exit 0
