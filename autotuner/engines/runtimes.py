"""The profiles of the runtimes the tool drives. One entry per runtime; everything engine-specific lives here.

Sources: vLLM's and SGLang's own argument parsers and server code (health ``/health``; cache reset
``/reset_prefix_cache`` in vLLM's dev mode, ``/flush_cache`` in SGLang), llama.cpp's server as wrapped by
``autotuner.engines.llamacpp_server``, and our ``sim`` double. Images are defaults only: specs should pin theirs.
"""

from __future__ import annotations

from .profile import Endpoints, EngineProfile, FailureKind

LLAMACPP = EngineProfile(
    runtime="llamacpp",
    module="autotuner.engines.llamacpp_server",
    default_image=None,  # no public image carries our wrapper: build one FROM the host's Python (see README)
    bool_style="negatable",
    endpoints=Endpoints(cache_reset=None, busy_gauges=("llamacpp:requests_processing", "llamacpp:requests_deferred")),
    failures=((FailureKind.MODEL_NOT_FOUND, r"model not found"),),
    served_name_flag="--alias",
    api_backend="vllm",  # genai-bench's vllm backend sends ignore_eos, which llama.cpp's server honours
    server_engine="LlamaCPP",
)

VLLM = EngineProfile(
    runtime="vllm",
    module="vllm.entrypoints.openai.api_server",
    default_image="vllm/vllm-openai:latest",
    bool_style="negatable",
    endpoints=Endpoints(
        cache_reset="/reset_prefix_cache", busy_gauges=("vllm:num_requests_running", "vllm:num_requests_waiting")
    ),
    failures=(
        (
            FailureKind.OOM,
            r"No available memory for the cache blocks|torch\.OutOfMemoryError|"
            r"larger than the maximum number of tokens that can be stored in KV cache",
        ),
        (FailureKind.INVALID_ARGUMENT, r"api_server\.py: error:|vllm serve: error:"),
    ),
    api_backend="vllm",
    server_engine="vLLM",
    env={"VLLM_SERVER_DEV_MODE": "1"},  # enables /reset_prefix_cache between benchmark levels
)

SGLANG = EngineProfile(
    runtime="sglang",
    module="sglang.launch_server",
    default_image="lmsysorg/sglang:latest",
    bool_style="store-true",
    endpoints=Endpoints(cache_reset="/flush_cache", busy_gauges=("sglang:num_running_reqs", "sglang:num_queue_reqs")),
    failures=(
        (
            FailureKind.OOM,
            r"Not enough memory\. Please try to increase --mem-fraction-static|"
            r"CUDA error: out of memory",
        ),
        (FailureKind.INVALID_ARGUMENT, r"launch_server\.py: error:"),
    ),
    model_flag="--model-path",
    api_backend="sglang",
    server_engine="SGLang",
)

SIM = EngineProfile(
    runtime="sim",
    module="autotuner.engines.sim_server",
    default_image=None,
    bool_style="negatable",
    endpoints=Endpoints(
        cache_reset="/reset_prefix_cache", busy_gauges=("sim:num_requests_running", "sim:num_requests_waiting")
    ),
    served_name_flag=None,  # the sim loads nothing: --model is the served name
    api_backend="vllm",
    server_engine="vLLM",
)

PROFILES: dict[str, EngineProfile] = {p.runtime: p for p in (LLAMACPP, VLLM, SGLANG, SIM)}


def profile_for(runtime: str) -> EngineProfile:
    try:
        return PROFILES[runtime]
    except KeyError:
        raise ValueError(f"unknown runtime {runtime!r} (known: {', '.join(PROFILES)})") from None
