"""The few HTTP calls the benchmark driver makes to the engine itself: warm-up, cache reset, idle check, health.

Standard library only: these run in the tuner's process, where genai-bench (and its gevent patching) must not be
imported. Warm-up requests are shaped like genai-bench's own: streamed chat completions with
``stream_options.include_usage``, ``max_tokens`` set, ``ignore_eos`` when the profile's genai-bench backend sends
it, and the workload's request parameters. Loopback URLs never go through a proxy (the environment may carry one
for the model hub; a proxy cannot reach our own engine on 127.0.0.1).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)")


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _opener(url: str) -> urllib.request.OpenerDirector:
    """No proxy for loopback; the environment's proxies (and no_proxy) otherwise."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({} if is_loopback(url) else None))


def request(url: str, *, method: str = "GET", body: Any = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """Status and body of one HTTP request; HTTP errors are statuses, not exceptions. Raises OSError when nothing
    answers (connection refused, reset, timeout)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    prepared = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _opener(url).open(prepared, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, http.client.HTTPException) as exc:
        raise OSError(str(getattr(exc, "reason", exc))) from None


def healthy(base_url: str, path: str, timeout: float = 3.0) -> bool:
    try:
        return request(base_url.rstrip("/") + path, timeout=timeout)[0] == 200
    except OSError:
        return False


def reset_cache(base_url: str, path: str, timeout: float = 10.0) -> tuple[bool, str]:
    """POST the cache-reset endpoint: whether it worked, and what happened (never raises: a reset is best effort).

    vLLM answers 404 when its dev mode is off, SGLang may refuse while requests run: the level then runs with a
    warm cache, which the driver says.
    """
    try:
        status, body = request(base_url.rstrip("/") + path, method="POST", body={}, timeout=timeout)
    except OSError as exc:
        return False, f"cache reset {path} failed: {exc}"
    if 200 <= status < 300:
        return True, f"cache reset {path}: {status}"
    detail = body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
    return False, f"cache reset {path} not available: HTTP {status} {detail}".rstrip()


def busy_requests(metrics_text: str, gauges: Collection[str]) -> int | None:
    """Requests running or queued according to the busy gauges in a /metrics page; None if it has none.

    ``gauges`` are full metric names (``llamacpp:requests_processing``) or names without the engine prefix."""
    total: float | None = None
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name = match.group(1)
        if name in gauges or name.rsplit(":", 1)[-1] in gauges:
            try:
                total = (total or 0.0) + float(match.group(2))
            except ValueError:
                continue
    return None if total is None else int(total)


def wait_idle(
    base_url: str,
    metrics_path: str | None,
    timeout: float,
    fallback: float = 1.0,
    gauges: Collection[str] = (),
) -> str:
    """Wait until the engine reports no request running or queued (at most ``timeout`` s).

    After a level, genai-bench has dropped the requests in flight; the engine needs a moment to abort them. Where
    the engine's /metrics shows that, wait exactly as long as needed; where it does not, wait ``fallback``
    seconds, the pause genai-bench itself makes after each level. Returns what happened, for the log.
    """
    started = time.monotonic()
    if metrics_path:
        url = base_url.rstrip("/") + metrics_path
        while True:
            try:
                status, body = request(url, timeout=2.0)
            except OSError as exc:
                return f"engine did not answer {metrics_path}: {exc}"  # nothing to wait for
            busy = busy_requests(body.decode("utf-8", "replace"), gauges) if status == 200 else None
            if busy is None:
                break
            waited = time.monotonic() - started
            if busy == 0:
                return f"engine idle after {waited:.2f} s"
            if waited >= timeout:
                return f"engine still reports {busy} request(s) after {waited:.1f} s; going on"
            time.sleep(0.05)
    time.sleep(fallback)
    return f"no busy gauge in {metrics_path or 'no metrics endpoint'}: paused {fallback:.1f} s"


# ------------------------------------------------------------------------------------------------------ warm-up


@dataclass(frozen=True)
class WarmupReport:
    requests: int
    failures: tuple[str, ...]
    seconds: float
    output_tokens: int

    @property
    def ok(self) -> bool:
        return not self.failures


def scenario_shape(scenario: str) -> tuple[int, int] | None:
    """Typical (input tokens, output tokens) of a text scenario: D(i,o) -> (i, o); N(mi,si)/(mo,so) -> means;
    U(a,b)/(c,d) -> midpoints; U(i,o) -> half the maxima. None for other scenario types."""
    numbers = [int(n) for n in re.findall(r"\d+", scenario)]
    kind = scenario[:1]
    if kind == "D" and len(numbers) == 2:
        return numbers[0], numbers[1]
    if kind == "N" and len(numbers) == 4:
        return numbers[0], numbers[2]
    if kind == "U" and len(numbers) == 4:
        return (numbers[0] + numbers[1]) // 2, (numbers[2] + numbers[3]) // 2
    if kind == "U" and len(numbers) == 2:
        return max(1, numbers[0] // 2), max(2, numbers[1] // 2)
    return None


def chat_once(
    base_url: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    ignore_eos: bool,
    params: Mapping[str, Any],
    timeout: float,
) -> int:
    """One streamed chat completion read to its end; returns the output tokens the engine reported.

    The prompt is ``input_tokens`` repetitions of " hello" (one token each in common BPE vocabularies): warm-up
    needs the right size, not the exact count. Raises OSError on any failure, with the reason.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": ("hello " * max(1, input_tokens)).strip()}],
        "max_tokens": max(1, output_tokens),
        "temperature": params.get("temperature", 0.0),
        "stream": True,
        "stream_options": {"include_usage": True},
        **{k: v for k, v in params.items() if k not in ("temperature", "messages")},
    }
    if ignore_eos:
        body.setdefault("ignore_eos", True)
    url = base_url.rstrip("/") + "/v1/chat/completions"
    prepared = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    usage: dict[str, Any] = {}
    try:
        with _opener(url).open(prepared, timeout=timeout) as response:
            for raw in response:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                usage = chunk.get("usage") or usage
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip().replace("\n", " ")[:200]
        raise OSError(f"HTTP {exc.code} {detail}".rstrip()) from None
    except (urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
        raise OSError(str(getattr(exc, "reason", exc))) from None
    return int(usage.get("completion_tokens") or 0)


def warm_up(
    base_url: str,
    model: str,
    shape: tuple[int, int],
    count: int,
    *,
    concurrency: int,
    ignore_eos: bool,
    params: Mapping[str, Any],
    timeout: float,
) -> WarmupReport:
    """Send ``count`` warm-up requests, ``concurrency`` at a time, and wait for all of them."""
    started = time.monotonic()
    failures: list[str] = []
    tokens = 0

    def one(_: int) -> int:
        return chat_once(base_url, model, *shape, ignore_eos=ignore_eos, params=params, timeout=timeout)

    if count > 0:
        with ThreadPoolExecutor(max_workers=max(1, min(count, concurrency))) as pool:
            futures = [pool.submit(one, i) for i in range(count)]
            for future in futures:
                try:
                    tokens += future.result()
                except OSError as exc:
                    failures.append(str(exc))
    return WarmupReport(count, tuple(failures), time.monotonic() - started, tokens)
