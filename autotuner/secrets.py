"""Secrets never leave the process environment: find them, and mask them in anything written or printed.

Tokens (HF_TOKEN, GitHub tokens) and proxy passwords must reach engines and genai-bench, so they are in
environments we build; they must never reach a log file, a report, a PR comment or test output. Every writer of
text that could contain them (engine logs, genai-bench logs, reports, comments) passes it through ``Masker``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MASK = "***"
# Variables whose values are secrets by name; values shorter than this are not masked (too likely to collide).
_SECRET_NAME = re.compile(r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$", re.I)
_KNOWN = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "INPUT_GITHUB-TOKEN")
_MIN_LENGTH = 6
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")


def secret_values(environ: Mapping[str, str]) -> set[str]:
    """Values in ``environ`` that are secrets: tokens and passwords by name, and passwords inside proxy URLs."""
    found: set[str] = set()
    for name, value in environ.items():
        if not value:
            continue
        if name.upper() in _KNOWN or _SECRET_NAME.search(name):
            found.add(value)
        if name.lower() in PROXY_VARIABLES:
            found.update(_url_secrets(value))
    return {v for v in found if len(v) >= _MIN_LENGTH}


def _url_secrets(value: str) -> Iterable[str]:
    try:
        parts = urlsplit(value if "://" in value else f"http://{value}")
    except ValueError:
        return []
    return [p for p in (parts.password,) if p]


@dataclass(frozen=True)
class Masker:
    """Replaces every known secret value (and URL-embedded passwords) in text with ``***``."""

    secrets: frozenset[str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> Masker:
        values = secret_values(os.environ if environ is None else environ) | {v for v in extra if len(v) >= _MIN_LENGTH}
        return cls(frozenset(values))

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return _URL_PASSWORD.sub(rf"\1{MASK}@", text)


# user:password@ in any URL, whether or not we knew the password: proxies are often set in config files.
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@")
