"""One environment builder for engines and genai-bench alike.

The original system ran genai-bench without the proxy its containers had (0 of 3 experiments succeeded), and
hit 403/429 from the hub without HF_TOKEN. So both sides get the same additions from here: proxies in both
letter cases (tools disagree on which they read), the Hugging Face token under both of its names, then the
profile's and the spec's own variables, then the config's ``env.*`` parameters (most specific wins).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..secrets import PROXY_VARIABLES

_TOKEN_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def passthrough(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Proxies (both cases) and the HF token (both names) from ``environ``, ready to hand to a child."""
    source = os.environ if environ is None else environ
    result: dict[str, str] = {}
    for name in PROXY_VARIABLES:
        value = source.get(name) or source.get(name.upper())
        if value:
            result[name] = value
            result[name.upper()] = value
    token = next((source[n] for n in _TOKEN_NAMES if source.get(n)), None)
    if token:
        for name in _TOKEN_NAMES:
            result[name] = token
    return result


def engine_environment(*layers: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to set for an engine: passthrough first, then each layer in order (later wins)."""
    result = passthrough(environ)
    for layer in layers:
        result.update(layer)
    return result
