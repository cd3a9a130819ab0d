"""Small HTTP helpers for tests (standard library only), speaking to engines as genai-bench does."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def chat(url: str, model: str, prompt: str = "Say hello", max_tokens: int = 8, timeout: float = 60) -> dict[str, Any]:
    """A streamed chat completion with usage; returns {"text": ..., "usage": {...}} assembled from the SSE chunks."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
        "temperature": 0.0,
    }
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    text, usage = "", None
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a local test server
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            for choice in chunk.get("choices") or []:
                text += (choice.get("delta") or {}).get("content") or ""
            usage = chunk.get("usage") or usage
    return {"text": text, "usage": usage}
