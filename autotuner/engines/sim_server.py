"""The ``sim`` engine: an OpenAI-compatible streaming server whose latencies follow a documented queueing model.

Why it exists: a real engine takes seconds to minutes to start and needs a model (SGLang and vLLM also a GPU).
Tests of the tuning pipeline, a 200-trial study in CI and dry runs of a spec on a laptop need something that
behaves like an engine -- real HTTP over TCP, real server-sent events, batching that trades per-token latency for
throughput, queueing, an OOM at start, crashes, errors -- but starts in milliseconds, costs almost no CPU, is
deterministic for a seed and whose numbers can be predicted from its flags::

    python -m autotuner.engines.sim_server --host 127.0.0.1 --port 8123 --model sim-model --max-num-seqs 8

Queueing model (every model time below is multiplied by ``--time-scale``)
--------------------------------------------------------------------------
The engine runs in discrete steps, like vLLM's continuous-batching scheduler:

1. Admission: at the start of a step, waiting requests are admitted in arrival order (FCFS) while fewer than
   ``--max-num-seqs`` sequences run. Admitted sequences stay in the batch until they finish. KV capacity never
   limits admission: a config whose worst case (``max_num_seqs * max_model_len``) exceeds ``--kv-cache-tokens``
   is refused at start with "CUDA out of memory" (exit 1), so no preemption is modelled.
2. Token budget: each decoding sequence uses one token of ``--max-num-batched-tokens``; what is left goes to
   sequences still in prefill, in admission order. A prompt longer than what is left is prefilled in chunks over
   several steps (chunked prefill). Prompt tokens found in the prefix cache are not computed (at least one is).
3. Step time = ``decode_step_ms + decode_step_ms_per_seq * B + 1000 * P / prefill_tokens_per_s`` milliseconds,
   where B is the number of sequences that did work in the step (decoding or prefilling) and P the number of
   prompt tokens prefilled in it.
4. At the end of a step each decoding sequence emits one token, and a sequence whose prefill completed emits its
   first token. A sequence that reached its output length leaves the batch; its slot is free at the next step.
   A request arriving during a step waits for that step to end.

So, on an idle server, a lone request with P prompt tokens (P within the budget) sees
``TTFT = decode_step_ms + decode_step_ms_per_seq + 1000 P / prefill_tokens_per_s`` and
``TPOT = decode_step_ms + decode_step_ms_per_seq``; with B sequences decoding, each one gets a token every
``decode_step_ms + decode_step_ms_per_seq * B`` ms, so aggregate throughput ``B / that`` grows with B while each
stream slows down. Requests beyond ``--max-num-seqs`` queue, which shows up in TTFT.

Tokens: text is cut into whitespace-separated words and each word into pieces of at most 4 characters
(``re.findall(r"\\S{1,4}", text)``): "hello world" counts 4 tokens, about what a BPE tokenizer gives for English.
A chat prompt adds 3 tokens per message (``<|im_start|>``, the role, ``<|im_end|>``) and 2 for the reply's
header, like ChatML. Token-id prompts of /v1/completions count one token per id. Prefix caching works on full
blocks of 16 such tokens (an LRU of ``kv_cache_tokens / 16`` blocks, keyed by a chained hash like vLLM's).

Output: the output length is ``max_tokens`` when ``ignore_eos`` is true; otherwise each token ends the reply with
probability ``--eos-probability`` (a seeded geometric draw, at least ``min_tokens``, at most ``max_tokens``).
Words, lengths and injected errors come from ``random.Random`` seeded with ``--seed`` and the request's number
(requests are numbered in arrival order), so the same seed and request sequence give the same outputs.
``--startup-delay`` is wall-clock seconds and is not scaled by ``--time-scale``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import math
import os
import queue
import random
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG = logging.getLogger("autotuner.sim")

CHAT = "chat"
COMPLETION = "completion"
PREFIX_BLOCK_TOKENS = 16
COMPLETION_DEFAULT_MAX_TOKENS = 16  # what vLLM and OpenAI use when /v1/completions gets no max_tokens
_PIECE = re.compile(r"\S{1,4}")
_MAX_LAG_S = 0.005  # a step that starts later than this after the previous one does not try to catch up
_WORDS = (
    "the", "model", "serves", "tokens", "from", "a", "batch", "of", "requests", "while", "queue", "grows",
    "and", "latency", "rises", "under", "load", "cache", "hits", "save", "prefill", "time", "each", "step",
    "decodes", "one", "token", "per", "sequence", "in", "flight", "so", "throughput", "scales",
)  # fmt: skip


# ----------------------------------------------------------------------------------------------- configuration


def _typed(kind: type[int] | type[float], low: float, high: float | None, what: str) -> Any:
    """Build an argparse type that says which range a flag accepts, so a bad spec value fails with a clear error."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from error
        if value < low or (high is not None and value > high) or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The sim's own flag parser; vLLM-like names so that specs read naturally and validate against it."""
    p = argparse.ArgumentParser(
        prog="python -m autotuner.engines.sim_server",
        description="OpenAI-compatible engine double whose latencies follow a documented queueing model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    pos_int = _typed(int, 1, None, "an integer >= 1")
    pos_float = _typed(float, 1e-9, None, "a number > 0")
    nonneg_float = _typed(float, 0.0, None, "a number >= 0")
    add = p.add_argument
    add("--host", default="127.0.0.1", help="address to listen on")
    add("--port", type=_typed(int, 0, 65535, "a port 0-65535"), default=8000, help="TCP port (0 = any free port)")
    add("--model", default="sim-model", help="served model name (requests naming another model get 404)")
    add("--seed", type=int, default=0, help="seed of outputs, output lengths and injected errors")
    add("--max-num-seqs", type=pos_int, default=16, help="sequences running in one batch")
    add("--max-num-batched-tokens", type=pos_int, default=2048, help="token budget of one step (chunked prefill)")
    add("--prefill-tokens-per-s", type=pos_float, default=20000.0, help="prompt tokens prefilled per second")
    add("--decode-step-ms", type=nonneg_float, default=15.0, help="base time of one step")
    add("--decode-step-ms-per-seq", type=nonneg_float, default=0.5, help="extra step time per sequence in the batch")
    add("--kv-cache-tokens", type=pos_int, default=131072, help="KV cache capacity in tokens (OOM at start if short)")
    add("--max-model-len", type=pos_int, default=4096, help="context length: prompt plus output tokens")
    add("--startup-delay", type=nonneg_float, default=0.0, help="seconds before /health answers 200 (not scaled)")
    add("--error-rate", type=_typed(float, 0.0, 1.0, "a fraction 0-1"), default=0.0, help="share of HTTP 500s")
    add("--crash-after", type=pos_int, default=None, help="exit with code 1 once this many requests are answered")
    add("--hang", action="store_true", help="never become ready (/health stays 503)")
    add("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=True, help="reuse prompt blocks")
    add("--time-scale", type=pos_float, default=1.0, help="multiplies every model time (0.1 = 10x faster)")
    add(
        "--eos-probability",
        type=_typed(float, 0.0, 1.0, "a fraction 0-1"),
        default=0.01,
        help="per token, without ignore_eos",
    )
    return p


@dataclass(frozen=True)
class SimConfig:
    """The parsed flags, typed, so the rest of the module never touches an argparse Namespace."""

    host: str
    port: int
    model: str
    seed: int
    max_num_seqs: int
    max_num_batched_tokens: int
    prefill_tokens_per_s: float
    decode_step_ms: float
    decode_step_ms_per_seq: float
    kv_cache_tokens: int
    max_model_len: int
    startup_delay: float
    error_rate: float
    crash_after: int | None
    hang: bool
    enable_prefix_caching: bool
    time_scale: float
    eos_probability: float

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SimConfig:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def startup_failure(config: SimConfig) -> str | None:
    """The error a real engine would die with at start for this config, or None: configs fail as data, early."""
    if config.max_num_batched_tokens < config.max_num_seqs:
        return (
            f"ValueError: max_num_batched_tokens ({config.max_num_batched_tokens}) must be greater than or equal "
            f"to max_num_seqs ({config.max_num_seqs})."
        )
    need = config.max_num_seqs * config.max_model_len
    if need > config.kv_cache_tokens:
        gib = (need - config.kv_cache_tokens) * 131072 / 2**30  # 128 KiB per token, an 8B model in bf16
        return (
            f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {gib:.2f} GiB. (sim: --max-num-seqs "
            f"{config.max_num_seqs} x --max-model-len {config.max_model_len} = {need} KV tokens > "
            f"--kv-cache-tokens {config.kv_cache_tokens})"
        )
    return None


def step_seconds(config: SimConfig, batch: int, prefill_tokens: int) -> float:
    """Wall time of one engine step (model item 3); pure, so tests and docs can predict the numbers."""
    ms = config.decode_step_ms + config.decode_step_ms_per_seq * batch
    ms += 1000.0 * prefill_tokens / config.prefill_tokens_per_s
    return ms * config.time_scale / 1000.0


def injected_error(config: SimConfig, index: int) -> bool:
    """Whether request number ``index`` gets an HTTP 500: a pure function of seed and order, hence reproducible."""
    return config.error_rate > 0 and random.Random(f"{config.seed}:error:{index}").random() < config.error_rate


# ---------------------------------------------------------------------------------------------------- requests


class RequestError(Exception):
    """A request the server refuses, with the HTTP status and OpenAI error type a real server would use."""

    def __init__(self, status: int, message: str, kind: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


@dataclass(frozen=True)
class GenerationRequest:
    """A validated /v1/chat/completions or /v1/completions request, reduced to what the model uses."""

    kind: str
    prompt: tuple[str, ...]
    max_tokens: int
    min_tokens: int
    ignore_eos: bool
    stream: bool
    include_usage: bool


def text_tokens(text: str) -> list[str]:
    """The documented token estimate: words cut into pieces of at most 4 characters."""
    return _PIECE.findall(text)


def _content_text(content: Any) -> str:
    """Text of a chat message's content: a string, or the text parts of a multi-part content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _chat_prompt(body: dict[str, Any]) -> tuple[str, ...]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list")
    tokens: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise RequestError(400, "each message must be an object")
        role = str(message.get("role", "user"))
        tokens += ["<|im_start|>", role, *text_tokens(_content_text(message.get("content"))), "<|im_end|>"]
    return (*tokens, "<|im_start|>", "assistant")


def _completion_prompt(body: dict[str, Any]) -> tuple[str, ...]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one prompt
    if isinstance(prompt, str):
        return tuple(text_tokens(prompt))
    if isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return tuple(str(t) for t in prompt)
    raise RequestError(400, "'prompt' must be a string or a list of token ids (one prompt per request)")


def _int_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(400, f"'{name}' must be an integer")
    return value


def _max_tokens(body: dict[str, Any], kind: str, prompt_len: int, config: SimConfig) -> int:
    """max_completion_tokens / max_tokens, with vLLM's defaults and context-length errors."""
    limit = config.max_model_len
    asked = _int_field(body, "max_completion_tokens") if kind == CHAT else None
    asked = asked if asked is not None else _int_field(body, "max_tokens")
    if asked is not None and asked < 1:
        raise RequestError(400, f"max_tokens must be at least 1, got {asked}.")
    if prompt_len >= limit:
        raise RequestError(
            400,
            f"This model's maximum context length is {limit} tokens. However, your request has {prompt_len} input tokens. Please reduce the length of the input messages.",
        )
    if asked is None:
        return limit - prompt_len if kind == CHAT else min(COMPLETION_DEFAULT_MAX_TOKENS, limit - prompt_len)
    if prompt_len + asked > limit:
        raise RequestError(
            400,
            f"This model's maximum context length is {limit} tokens. However, you requested {prompt_len + asked} tokens ({prompt_len} in the messages, {asked} in the completion). Please reduce the length of the messages or completion.",
        )
    return asked


def parse_request(kind: str, raw: bytes, config: SimConfig) -> GenerationRequest:
    """Validate a generation request the way vLLM does (status codes and messages), or raise RequestError."""
    try:
        body = json.loads(raw or b"null")
    except ValueError as error:
        raise RequestError(400, f"invalid JSON body: {error}") from error
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    model = body.get("model")
    if model is not None and model != config.model:
        raise RequestError(404, f"The model `{model}` does not exist.", "NotFoundError")
    if body.get("n") not in (None, 1):
        raise RequestError(400, "the sim engine serves n=1 only")
    prompt = _chat_prompt(body) if kind == CHAT else _completion_prompt(body)
    max_tokens = _max_tokens(body, kind, len(prompt), config)
    min_tokens = _int_field(body, "min_tokens") or 0
    if not 0 <= min_tokens <= max_tokens:
        raise RequestError(400, f"min_tokens must be between 0 and max_tokens={max_tokens}, got {min_tokens}")
    options = body.get("stream_options")
    return GenerationRequest(
        kind=kind,
        prompt=prompt,
        max_tokens=max_tokens,
        min_tokens=min_tokens,
        ignore_eos=bool(body.get("ignore_eos", False)),
        stream=bool(body.get("stream", False)),
        include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
    )


def output_plan(request: GenerationRequest, rng: random.Random, eos_probability: float) -> tuple[int, str]:
    """Output length and finish reason: max_tokens under ignore_eos, else a seeded geometric early stop."""
    if request.ignore_eos or eos_probability <= 0:
        return request.max_tokens, "length"
    natural = 1 if eos_probability >= 1 else 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - eos_probability))
    natural = max(natural, request.min_tokens, 1)
    return (request.max_tokens, "length") if natural >= request.max_tokens else (natural, "stop")


# ------------------------------------------------------------------------------------------------------ engine


@dataclass(frozen=True)
class Emission:
    """One generated token handed from the scheduler to the request's HTTP thread."""

    text: str
    finish_reason: str | None


@dataclass(eq=False)
class RequestState:
    """A request inside the engine: its progress through prefill and decode, and its token queue."""

    index: int
    request: GenerationRequest
    rng: random.Random
    output_len: int
    finish_reason: str
    arrival: float
    events: queue.SimpleQueue[Emission] = field(default_factory=queue.SimpleQueue)
    cached_tokens: int = 0
    prefilled: int = 0
    generated: int = 0
    admitted_at: float | None = None
    first_token_at: float | None = None
    cancelled: bool = False

    @property
    def to_prefill(self) -> int:
        return len(self.request.prompt) - self.cached_tokens - self.prefilled

    @property
    def done(self) -> bool:
        return self.generated >= self.output_len


class PrefixCache:
    """An LRU of full 16-token prompt blocks keyed by a chained hash of everything before them, like vLLM's."""

    def __init__(self, capacity_blocks: int) -> None:
        self._capacity = capacity_blocks
        self._blocks: collections.OrderedDict[int, None] = collections.OrderedDict()

    @staticmethod
    def _keys(tokens: tuple[str, ...]) -> list[int]:
        keys, parent = [], 0
        for start in range(0, len(tokens) - PREFIX_BLOCK_TOKENS + 1, PREFIX_BLOCK_TOKENS):
            parent = hash((parent, tokens[start : start + PREFIX_BLOCK_TOKENS]))
            keys.append(parent)
        return keys

    def lookup(self, tokens: tuple[str, ...]) -> int:
        """Cached prompt tokens: the longest run of leading blocks present, never the whole prompt."""
        hits = 0
        for key in self._keys(tokens):
            if key not in self._blocks:
                break
            self._blocks.move_to_end(key)
            hits += 1
        return min(hits * PREFIX_BLOCK_TOKENS, len(tokens) - 1)

    def insert(self, tokens: tuple[str, ...]) -> None:
        for key in self._keys(tokens):
            self._blocks[key] = None
            self._blocks.move_to_end(key)
        while len(self._blocks) > self._capacity:
            self._blocks.popitem(last=False)

    def clear(self) -> None:
        self._blocks.clear()


@dataclass
class StepPlan:
    """What one step computes: sequences decoding, prefill chunks, and how long the step takes."""

    decoding: list[RequestState]
    prefilling: list[tuple[RequestState, int]]
    seconds: float


@dataclass
class Counters:
    """Totals behind /metrics."""

    prompt_tokens: int = 0
    generation_tokens: int = 0
    success: int = 0
    failure: int = 0
    prefix_queries: int = 0
    prefix_hits: int = 0


class SimEngine:
    """The scheduler of the queueing model; one thread runs steps, HTTP threads submit and read tokens."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._cond = threading.Condition()
        self._waiting: collections.deque[RequestState] = collections.deque()
        self._running: list[RequestState] = []
        self._numbered = 0
        self._answered = 0
        self._stopping = False
        self._prefix = PrefixCache(config.kv_cache_tokens // PREFIX_BLOCK_TOKENS)
        self.counters = Counters()

    def number(self) -> int:
        """Number requests in arrival order: the index that seeds their outputs and injected errors."""
        with self._cond:
            self._numbered += 1
            return self._numbered - 1

    def submit(self, index: int, request: GenerationRequest, now: float) -> RequestState:
        rng = random.Random(f"{self.config.seed}:request:{index}")
        length, reason = output_plan(request, rng, self.config.eos_probability)
        state = RequestState(index, request, rng, length, reason, arrival=now)
        with self._cond:
            self._waiting.append(state)
            self.counters.prompt_tokens += len(request.prompt)
            self._cond.notify()
        return state

    def cancel(self, state: RequestState) -> None:
        """A client went away: drop its sequence at the next step, as engines abort disconnected requests."""
        with self._cond:
            state.cancelled = True

    def answered(self, ok: bool) -> int:
        """Count an answered request; returns the total, which --crash-after compares with."""
        with self._cond:
            self._answered += 1
            if ok:
                self.counters.success += 1
            else:
                self.counters.failure += 1
            return self._answered

    def reset_prefix_cache(self) -> None:
        with self._cond:
            self._prefix.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def run(self) -> None:
        """Run steps back to back while there is work; sleep on a condition (no CPU) while idle.

        Step ends are scheduled from the previous step's end, not from when the thread woke up, so the
        sleep overshoot of a busy 2-core machine does not accumulate into lower throughput.
        """
        step_end = 0.0
        while True:
            with self._cond:
                idle = False
                while not (self._waiting or self._running or self._stopping):
                    idle = True
                    self._cond.wait()
                if self._stopping:
                    return
                now = time.monotonic()
                plan = self._plan_step(now)
            if not plan.decoding and not plan.prefilling:
                continue
            start = now if idle or now - step_end > _MAX_LAG_S else step_end
            step_end = start + plan.seconds
            delay = step_end - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with self._cond:
                self._complete_step(plan, time.monotonic())

    def _plan_step(self, now: float) -> StepPlan:
        """Model items 1-3: admit FCFS up to max_num_seqs, share the token budget, price the step."""
        cfg = self.config
        self._running = [s for s in self._running if not s.cancelled]
        while self._waiting and len(self._running) < cfg.max_num_seqs:
            state = self._waiting.popleft()
            if not state.cancelled:
                self._admit(state, now)
        decoding = [s for s in self._running if s.to_prefill == 0]
        budget = cfg.max_num_batched_tokens - len(decoding)
        prefilling: list[tuple[RequestState, int]] = []
        for state in self._running:
            if state.to_prefill > 0 and budget > 0:
                chunk = min(state.to_prefill, budget)
                budget -= chunk
                prefilling.append((state, chunk))
        prefill_tokens = sum(chunk for _, chunk in prefilling)
        seconds = step_seconds(cfg, len(decoding) + len(prefilling), prefill_tokens)
        return StepPlan(decoding, prefilling, seconds)

    def _admit(self, state: RequestState, now: float) -> None:
        state.admitted_at = now
        if self.config.enable_prefix_caching:
            state.cached_tokens = self._prefix.lookup(state.request.prompt)
            self.counters.prefix_queries += len(state.request.prompt)
            self.counters.prefix_hits += state.cached_tokens
        self._running.append(state)

    def _complete_step(self, plan: StepPlan, now: float) -> None:
        """Model item 4: one token per decoding sequence, a first token for each finished prefill."""
        for state in plan.decoding:
            self._emit(state, now)
        for state, chunk in plan.prefilling:
            state.prefilled += chunk
            if state.to_prefill == 0:
                if self.config.enable_prefix_caching:
                    self._prefix.insert(state.request.prompt)
                self._emit(state, now)
        self._running = [s for s in self._running if not (s.done or s.cancelled)]

    def _emit(self, state: RequestState, now: float) -> None:
        if state.cancelled:
            return
        word = state.rng.choice(_WORDS)
        state.generated += 1
        if state.first_token_at is None:
            state.first_token_at = now
        finish = state.finish_reason if state.done else None
        state.events.put(Emission(word if state.generated == 1 else " " + word, finish))
        self.counters.generation_tokens += 1

    def metrics_text(self) -> str:
        """Prometheus exposition text, with names in the style of vLLM's (``sim:`` prefix)."""
        with self._cond:
            running, waiting, c = len(self._running), len(self._waiting), dataclasses.replace(self.counters)
            kv_used = sum(len(s.request.prompt) + s.generated for s in self._running)
        label = f'{{model_name="{self.config.model}"}}'
        rows = [
            ("num_requests_running", "gauge", "Requests in the running batch.", running),
            ("num_requests_waiting", "gauge", "Requests waiting for admission.", waiting),
            ("kv_cache_usage_perc", "gauge", "KV cache usage (1 = full).", kv_used / self.config.kv_cache_tokens),
            ("prompt_tokens_total", "counter", "Prompt tokens received.", c.prompt_tokens),
            ("generation_tokens_total", "counter", "Tokens generated.", c.generation_tokens),
            ("request_success_total", "counter", "Requests answered with 200.", c.success),
            ("request_failure_total", "counter", "Requests answered with an injected 500.", c.failure),
            ("prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.", c.prefix_queries),
            ("prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", c.prefix_hits),
        ]
        lines: list[str] = []
        for name, kind, doc, value in rows:
            lines += [f"# HELP sim:{name} {doc}", f"# TYPE sim:{name} {kind}", f"sim:{name}{label} {value}"]
        return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------------------- HTTP


class SimHTTPServer(ThreadingHTTPServer):
    """One thread per connection; holds the engine and the readiness clock the handlers consult."""

    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops SYNs (1 s retries) when a benchmark connects at once

    def __init__(self, config: SimConfig, engine: SimEngine) -> None:
        super().__init__((config.host, config.port), SimHandler)
        self.config = config
        self.engine = engine
        self.ready_at = None if config.hang else time.monotonic() + config.startup_delay

    def is_ready(self) -> bool:
        return self.ready_at is not None and time.monotonic() >= self.ready_at

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that drop idle keep-alive connections (genai-bench does after [DONE]) are normal, not errors."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        LOG.exception("error while serving %s", client_address)


def _error_body(status: int, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def _usage(state: RequestState) -> dict[str, Any]:
    prompt = len(state.request.prompt)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": state.generated,
        "total_tokens": prompt + state.generated,
        "prompt_tokens_details": {"cached_tokens": state.cached_tokens},
    }


class SimHandler(BaseHTTPRequestHandler):
    """The OpenAI-compatible surface, shaped like vLLM's responses (which genai-bench parses)."""

    server: SimHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked transfer encoding for streams
    server_version = "autotuner-sim/1"
    disable_nagle_algorithm = True  # one small write per token: Nagle plus delayed ACKs would add 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log: one summary line per generation request is logged instead."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if not self._ready_or_503():
            return
        if path == "/health":
            self._send(200, b"", "text/plain")
        elif path == "/v1/models":
            self._send_json(200, self._models())
        elif path == "/metrics":
            self._send(200, self.server.engine.metrics_text().encode(), "text/plain; version=0.0.4")
        elif path == "/flush_cache":  # SGLang accepts GET and POST
            self._reset_cache()
        else:
            self._send_json(404, _error_body(404, f"no route GET {path}", "NotFoundError"))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if not self._ready_or_503():
            return
        if path == "/v1/chat/completions":
            self._generate(CHAT, body)
        elif path == "/v1/completions":
            self._generate(COMPLETION, body)
        elif path in ("/reset_prefix_cache", "/flush_cache"):
            self._reset_cache()
        else:
            self._send_json(404, _error_body(404, f"no route POST {path}", "NotFoundError"))

    # --- plumbing

    def _ready_or_503(self) -> bool:
        if self.server.is_ready():
            return True
        self._send_json(503, _error_body(503, "the engine is starting", "ServiceUnavailableError"))
        return False

    def _read_body(self) -> bytes:
        """Read the whole body (Content-Length or chunked) so keep-alive connections stay in step."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _models(self) -> dict[str, Any]:
        model = {"id": self.server.config.model, "object": "model", "created": 0, "owned_by": "autotuner-sim"}
        return {
            "object": "list",
            "data": [{**model, "root": model["id"], "max_model_len": self.server.config.max_model_len}],
        }

    def _reset_cache(self) -> None:
        self.server.engine.reset_prefix_cache()
        LOG.info("prefix cache cleared (%s)", self.path)
        self._send(200, b"", "text/plain")

    # --- generation

    def _generate(self, kind: str, raw: bytes) -> None:
        engine, config = self.server.engine, self.server.config
        arrival = time.monotonic()
        try:
            request = parse_request(kind, raw, config)
        except RequestError as error:
            LOG.info("request - %s status=%d rejected: %s", kind, error.status, error.message)
            self._send_json(error.status, _error_body(error.status, error.message, error.kind))
            return
        index = engine.number()
        if injected_error(config, index):
            LOG.info("request %d %s status=500 injected error (--error-rate %s)", index, kind, config.error_rate)
            self._send_json(500, _error_body(500, "sim: injected internal error", "InternalServerError"))
            self._after_answer(ok=False)
            return
        state = engine.submit(index, request, arrival)
        try:
            (self._stream if request.stream else self._respond_whole)(state)
        except OSError:  # BrokenPipeError, ConnectionResetError: the client left
            engine.cancel(state)
            self.close_connection = True
            LOG.info("request %d %s client disconnected after %d tokens", index, kind, state.generated)
            return
        self._log_summary(state, arrival)
        self._after_answer(ok=True)

    def _respond_whole(self, state: RequestState) -> None:
        pieces: list[str] = []
        while True:
            emission = state.events.get()
            pieces.append(emission.text)
            if emission.finish_reason:
                break
        text, ident, created = "".join(pieces), self._ident(state), int(time.time())
        if state.request.kind == CHAT:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}}
            obj = "chat.completion"
        else:
            choice, obj = {"index": 0, "text": text}, "text_completion"
        choice.update(logprobs=None, finish_reason=emission.finish_reason)
        payload = {"id": ident, "object": obj, "created": created, "model": self.server.config.model}
        self._send_json(200, {**payload, "choices": [choice], "usage": _usage(state)})

    def _stream(self, state: RequestState) -> None:
        """SSE like vLLM: role chunk, one chunk per token (finish_reason on the last), usage chunk, [DONE]."""
        chunked = self.request_version != "HTTP/1.0"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        self.end_headers()
        chat = state.request.kind == CHAT
        head = {
            "id": self._ident(state),
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.server.config.model,
        }
        first = True
        while True:
            emission = state.events.get()
            events = []
            if chat and first:
                events.append(self._chunk(head, {"index": 0, "delta": {"role": "assistant", "content": ""}}))
            first = False
            choice: dict[str, Any] = (
                {"index": 0, "delta": {"content": emission.text}} if chat else {"index": 0, "text": emission.text}
            )
            events.append(self._chunk(head, {**choice, "logprobs": None, "finish_reason": emission.finish_reason}))
            self._write(b"".join(events), chunked)
            if emission.finish_reason:
                break
        tail = [b"data: [DONE]\n\n"]
        if state.request.include_usage:
            tail.insert(0, b"data: " + json.dumps({**head, "choices": [], "usage": _usage(state)}).encode() + b"\n\n")
        self._write(b"".join(tail), chunked)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    @staticmethod
    def _chunk(head: dict[str, Any], choice: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n"

    def _write(self, data: bytes, chunked: bool) -> None:
        """One socket write per event batch, framed as an HTTP/1.1 chunk when the client speaks 1.1."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

    @staticmethod
    def _ident(state: RequestState) -> str:
        return f"{'chatcmpl' if state.request.kind == CHAT else 'cmpl'}-sim-{state.index}"

    def _log_summary(self, state: RequestState, arrival: float) -> None:
        def ms(t: float | None) -> str:
            return "-" if t is None else f"{(t - arrival) * 1000:.1f}"

        LOG.info(
            "request %d %s stream=%s status=200 prompt_tokens=%d cached_tokens=%d completion_tokens=%d "
            "finish=%s queue_ms=%s ttft_ms=%s e2e_ms=%s",
            state.index, state.request.kind, state.request.stream, len(state.request.prompt), state.cached_tokens,
            state.generated, state.finish_reason, ms(state.admitted_at), ms(state.first_token_at), ms(time.monotonic()),
        )  # fmt: skip

    def _after_answer(self, ok: bool) -> None:
        """Count the answer; with --crash-after, die like a crashed engine once enough requests were served."""
        total = self.server.engine.answered(ok)
        limit = self.server.config.crash_after
        if limit is not None and total >= limit:
            LOG.error("simulated crash after %d requests (--crash-after %d): exiting with code 1", total, limit)
            _exit(1)


# ------------------------------------------------------------------------------------------------------- main


def _exit(code: int) -> None:
    """Leave at once: daemon threads mid-write to stderr could otherwise abort interpreter shutdown."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


def serve(config: SimConfig) -> int:
    """Start the engine and HTTP threads, announce readiness, and stop cleanly on SIGTERM/SIGINT."""
    failure = startup_failure(config)
    if failure:
        LOG.error("%s", failure)
        return 1
    engine = SimEngine(config)
    try:
        server = SimHTTPServer(config, engine)
    except OSError as error:
        LOG.error("cannot listen on %s:%d: %s", config.host, config.port, error)
        return 1
    stop: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: stop.append(received))  # a flag: no locks in handlers
    threading.Thread(target=engine.run, name="sim-engine", daemon=True).start()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-http", daemon=True).start()
    host, port = server.server_address[:2]
    LOG.info("listening on http://%s:%d (model %s); %s", host, port, config.model, _readiness_note(config))
    announced = False
    while not stop:
        if not announced and server.is_ready():
            LOG.info(
                "ready: serving %s on http://%s:%d (max_num_seqs=%d)", config.model, host, port, config.max_num_seqs
            )
            announced = True
        time.sleep(0.02)
    LOG.info("received signal %d: shutting down", stop[0])
    server.shutdown()
    server.server_close()
    engine.stop()
    return 0


def _readiness_note(config: SimConfig) -> str:
    if config.hang:
        return "--hang: /health will answer 503 forever"
    return f"ready in {config.startup_delay:g} s"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s sim: %(message)s")
    return serve(SimConfig.from_args(args))


if __name__ == "__main__":
    _exit(main())
