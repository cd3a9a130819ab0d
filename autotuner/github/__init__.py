"""GitHub publishing: the sticky PR comment, chart assets, the job summary and the Action's outputs (PyGithub).

This is the right-most edge of the data flow: it reads what the tuner and the report renderer wrote (results.json,
report.md, charts) and talks to GitHub; nothing else in the package imports it. Public surface below; the
command line is ``autotuner github publish`` (publish.py).
"""

from __future__ import annotations

from .assets import Asset, asset_folder, raw_url, upload_charts
from .body import VERDICTS, Links, SpecOutcome, compose, worst
from .comment import MAX_COMMENT_CHARS, Posted, find_sticky, marker, upsert_sticky
from .context import GitHubContext, PullRequestRef, context_from
from .publish import PublishOptions, make_client, publish
from .retry import explain, github_retry, retry_call
from .summary import SUMMARY_LIMIT, fit_bytes, job_failure, read_outputs, write_outputs, write_summary

__all__ = [
    "MAX_COMMENT_CHARS",
    "SUMMARY_LIMIT",
    "VERDICTS",
    "Asset",
    "GitHubContext",
    "Links",
    "Posted",
    "PublishOptions",
    "PullRequestRef",
    "SpecOutcome",
    "asset_folder",
    "compose",
    "context_from",
    "explain",
    "find_sticky",
    "fit_bytes",
    "github_retry",
    "job_failure",
    "make_client",
    "marker",
    "publish",
    "raw_url",
    "read_outputs",
    "retry_call",
    "upload_charts",
    "upsert_sticky",
    "worst",
    "write_outputs",
    "write_summary",
]
