"""``autotuner github publish``: from a run's files to the job summary, the step outputs and the sticky PR comment.

Inputs are files, not objects in memory, so the same command serves the tuning job (right after ``pytest
--tune``) and the fork-safe ``workflow_run`` job (on results downloaded from an artifact): each spec's
``results.json`` (found as ``<report-dir>/<spec>/latest/results.json``, or given), its ``report.md``,
``charts/*.png`` and ``headline.mmd`` beside it, and main's baseline ``<baseline-dir>/<spec>/baseline.json``.

Order matters: the summary and the outputs are written whatever happens to the GitHub calls (a token without
``pull-requests: write`` still gets a job summary that says which permission is missing). The token comes only
from the environment (``GITHUB_TOKEN``) and every message that leaves this process is masked.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from github import Auth, Github, GithubException

from ..compare import Comparison
from ..results import StudyResult
from ..secrets import Masker
from .assets import DEFAULT_BRANCH, asset_folder, upload_charts
from .body import Links, SpecOutcome, best_config_json, compose, worst
from .comment import MAX_COMMENT_CHARS, marker, upsert_sticky
from .context import GitHubContext, PullRequestRef, context_from, read_event
from .retry import explain, github_retry
from .summary import SUMMARY_LIMIT, best_config_output, fit_bytes, job_failure, write_outputs, write_summary

PR_FILE = "pr.json"
COMMENT_FILE = "autotuner-comment.md"
SUMMARY_FILE = "autotuner-summary.md"
COMPARISON_FILE = "comparison.json"


@dataclass
class PublishOptions:
    report_dir: Path
    results: list[Path] = field(default_factory=list)  # default: <report_dir>/*/latest/results.json
    baseline_dir: Path | None = None  # default: report_dir
    key: str = "default"
    comment: bool = True
    assets: bool = True
    assets_branch: str = DEFAULT_BRANCH
    artifact_url: str | None = None
    pr_file: Path | None = None  # workflow_run: the pr.json the tuning job left in its artifact
    author: str | None = None
    pytest_exit: int | None = None
    fail_on_regression: bool = True
    ref_name: str | None = None


def make_client(token: str, api_url: str, *, backoff: float = 1.0, write_interval: float = 1.0) -> Github:
    """PyGithub against ``api_url`` with our retry policy; GitHub asks for a second between writes."""
    return Github(
        auth=Auth.Token(token),
        base_url=api_url,
        retry=github_retry(backoff_factor=backoff),
        seconds_between_writes=write_interval,
        seconds_between_requests=0.0,
        timeout=30,
        per_page=100,
    )


def find_results(report_dir: Path) -> list[Path]:
    """``<report-dir>/<spec>/latest/results.json`` for every spec that has a run, sorted by spec."""
    return sorted(p for p in report_dir.glob("*/latest/results.json") if p.is_file())


def load_outcome(path: Path, baseline_dir: Path) -> SpecOutcome:
    """One spec's files as a ``SpecOutcome``; a missing or invalid file is an outcome with an error, not a crash."""
    spec = path.parent.parent.name if path.parent.name == "latest" else path.parent.name
    try:
        result = StudyResult.read(path)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).splitlines()[0]
        return SpecOutcome(spec=spec, verdict="error", error=f"{path}: {first}")
    spec = result.spec_name
    baseline_path = baseline_dir / spec / "baseline.json"
    baseline = None
    baseline_error = ""
    if baseline_path.is_file():
        try:
            baseline = StudyResult.read(baseline_path)
        except (OSError, ValueError) as exc:
            baseline_error = f"baseline {baseline_path} unreadable: {str(exc).splitlines()[0]}"
    folder = path.parent
    report = folder / "report.md"
    charts = tuple(sorted(p.stem for p in (folder / "charts").glob("*.png")))
    mermaid_file = folder / "headline.mmd"
    comparison, comparison_error = read_comparison(folder, result)
    verdict, detail = verdict_of(result, comparison, baseline)
    return SpecOutcome(
        spec=spec,
        verdict=verdict,
        result=result,
        baseline=baseline,
        report_md=report.read_text(encoding="utf-8") if report.is_file() else "",
        charts=charts,
        mermaid=mermaid_file.read_text(encoding="utf-8") if mermaid_file.is_file() else "",
        verdict_detail="; ".join(x for x in (baseline_error, comparison_error, detail) if x),
        comparison=comparison,
    )


def verdict_of(result: StudyResult, comparison: Comparison | None, baseline: StudyResult | None) -> tuple[str, str]:
    """The spec's verdict and a note. The statistical verdict is compare.py's (``comparison.json`` written by
    ``autotuner compare --json`` beside the results, else ``results.json``'s own ``comparison``); this module
    never judges a regression itself."""
    if result.best() is None:
        return "no-feasible-config", ""
    if comparison is not None:
        return comparison.verdict, ""
    if baseline is None:
        return "no-baseline", "no baseline.json for this spec on main yet"
    return "not-compared", "no statistical comparison was made; the figures are a glance"


def read_comparison(folder: Path, result: StudyResult) -> tuple[Comparison | None, str]:
    """``comparison.json`` beside the results (a fresh ``autotuner compare`` against the trusted baseline) wins over
    the one recorded in ``results.json``; an unreadable file is a note, not a failure."""
    path = folder / COMPARISON_FILE
    if path.is_file():
        try:
            return Comparison.model_validate_json(path.read_text(encoding="utf-8")), ""
        except (OSError, ValueError) as exc:
            return result.comparison, f"{path.name} unreadable ({str(exc).splitlines()[0]})"
    return result.comparison, ""


def chart_paths(outcome: SpecOutcome, results_path: Path) -> dict[str, Path]:
    return {name: results_path.parent / "charts" / f"{name}.png" for name in outcome.charts}


def publish(options: PublishOptions, environ: Mapping[str, str], out: TextIO, client: Github | None = None) -> int:
    """Do everything; returns 0: GitHub problems are warnings (the summary says what to fix), and the job's fate
    is the ``failure`` output, reported by the action's last step."""
    token = environ.get("GITHUB_TOKEN", "")
    masker = Masker.from_environ(environ, extra=[token] if token else [])
    notes: list[str] = []

    def warn(text: str) -> None:
        masked = masker.mask(text)
        notes.append(masked)
        print(f"::warning title=autotuner github::{masked}", file=out, flush=True)

    results = options.results or find_results(options.report_dir)
    baseline_dir = options.baseline_dir or options.report_dir
    outcomes = [load_outcome(p, baseline_dir) for p in results]
    if not outcomes:
        outcomes = [SpecOutcome(spec="(none)", verdict="error", error=f"no results.json under {options.report_dir}")]
    paths = dict(zip([o.spec for o in outcomes], results, strict=False))

    ctx: GitHubContext | None = None
    try:
        ctx = context_from(environ, read_event(environ))
    except (ValueError, KeyError, TypeError, OSError) as exc:
        if options.comment:
            warn(f"not commenting: {exc}")
    pr = ctx.pull_request if ctx is not None else None
    if ctx is not None and pr is not None and ctx.event_name.startswith("pull_request"):
        (options.report_dir / PR_FILE).parent.mkdir(parents=True, exist_ok=True)
        (options.report_dir / PR_FILE).write_text(pr.to_json() + "\n", encoding="utf-8")
    if options.pr_file is not None:
        try:
            pr = PullRequestRef.from_json(options.pr_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            warn(f"not commenting: {options.pr_file}: {exc}")
            pr = None
        if ctx is not None and pr is not None:  # the commit measured is the PR's head, not this run's GITHUB_SHA
            ctx = dataclasses.replace(ctx, sha=pr.head_sha, pull_request=pr)

    mark = marker(options.key)
    links = Links(
        artifact_url=options.artifact_url or (ctx.workflow_run_url or ctx.run_url if ctx else None),
        run_url=ctx.run_url if ctx else None,
        commit=(pr.head_sha if pr else (ctx.sha if ctx else "")),
    )
    gh: Github | None = None
    wants_github = options.comment and ctx is not None and pr is not None
    if wants_github and not token:
        warn("not commenting: no token (set the action's `github-token` input)")
        wants_github = False
    if wants_github and ctx is not None:
        gh = client or make_client(token, ctx.api_url)

    if gh is not None and ctx is not None and pr is not None and options.pr_file is not None:
        try:  # workflow_run: the PR number came from an artifact; believe it only if that PR is the commit measured
            head = gh.get_repo(ctx.repository).get_pull(pr.number).head.sha
            if head != pr.head_sha or (ctx.workflow_run_head_sha and head != ctx.workflow_run_head_sha):
                warn(f"not commenting: PR #{pr.number}'s head is {head[:12]}, not the commit that was measured")
                gh = None
        except (GithubException, OSError) as exc:  # OSError: requests' connection errors, after retries
            warn(explain(exc, "read", masker))
            gh = None

    if gh is not None and ctx is not None and pr is not None:
        links = _with_charts(gh, ctx, options, outcomes, paths, links, warn, masker)

    comment_body = compose(outcomes, links, mark, MAX_COMMENT_CHARS)
    options.report_dir.mkdir(parents=True, exist_ok=True)
    (options.report_dir / COMMENT_FILE).write_text(masker.mask(comment_body), encoding="utf-8")
    posted_url = None
    if gh is not None and ctx is not None and pr is not None:
        try:
            posted = upsert_sticky(
                gh, ctx.repository, pr.number, masker.mask(comment_body), mark, options.author, token
            )
            posted_url = posted.url
            print(f"{'created' if posted.created else 'updated'} comment {posted.url or posted.comment_id}", file=out)
        except (GithubException, OSError) as exc:
            warn(explain(exc, "comment", masker))

    summary = compose(outcomes, links, "", SUMMARY_LIMIT)
    if notes:
        summary += "\n> [!WARNING]\n" + "\n".join(f"> {note}  " for note in notes) + "\n"
    summary = fit_bytes(masker.mask(summary))
    summary_file = options.report_dir / SUMMARY_FILE
    summary_file.write_text(summary, encoding="utf-8")
    write_summary(summary, environ)

    verdict = worst([o.verdict for o in outcomes])
    failure = job_failure(verdict, options.pytest_exit, options.fail_on_regression)
    write_outputs(
        {
            "best-config": masker.mask(best_config_output(best_config_json(outcomes))),
            "verdict": verdict,
            "report-path": str(summary_file.resolve()),
            "comment-url": posted_url or "",
            "failure": failure or "",
        },
        environ,
    )
    print(f"verdict: {verdict}" + (f"; the job fails: {failure}" if failure else ""), file=out)
    return 0


def _with_charts(
    gh: Github,
    ctx: GitHubContext,
    options: PublishOptions,
    outcomes: Sequence[SpecOutcome],
    paths: Mapping[str, Path],
    links: Links,
    warn: Any,
    masker: Masker,
) -> Links:
    """Charts pushed to the assets branch (public repositories), or no URLs (Mermaid fallback)."""
    if not options.assets:
        return links
    private = ctx.private
    try:
        if private is None:
            private = bool(gh.get_repo(ctx.repository).private)
    except (GithubException, OSError) as exc:
        warn(explain(exc, "read", masker))
        return links
    if private:
        return links  # raw URLs of a private repository do not render for readers: Mermaid + artifact link
    urls: dict[str, dict[str, str]] = {}
    for outcome in outcomes:
        if outcome.result is None or not outcome.charts:
            continue
        try:
            folder = asset_folder(ctx, outcome.spec, options.ref_name)
            assets = upload_charts(gh, ctx, chart_paths(outcome, paths[outcome.spec]), folder, options.assets_branch)
            urls[outcome.spec] = {name: asset.url for name, asset in assets.items()}
        except GithubException as exc:
            warn(explain(exc, "assets", masker) + "; showing the Mermaid chart instead")
            break
        except (OSError, ValueError) as exc:  # an unreadable or non-PNG file, or the connection after retries
            warn(masker.mask(f"assets: {outcome.spec}: {exc}"))
    return Links(chart_urls=urls, artifact_url=links.artifact_url, run_url=links.run_url, commit=links.commit)


# ------------------------------------------------------------------------------------------------------ the CLI
# The parser is in autotuner/cli.py (so `autotuner --help` does not import PyGithub); this runs the command.
def cmd_github_publish(args: argparse.Namespace, out: TextIO) -> int:
    options = PublishOptions(
        report_dir=args.report_dir,
        results=list(args.results),
        baseline_dir=args.baseline_dir,
        key=args.key,
        comment=args.comment,
        assets=args.assets,
        assets_branch=args.assets_branch,
        artifact_url=args.artifact_url or None,
        pr_file=args.pr_file,
        author=args.author or None,
        pytest_exit=args.pytest_exit,
        fail_on_regression=args.fail_on_regression == "true",
        ref_name=args.ref_name or os.environ.get("GITHUB_REF_NAME"),
    )
    return publish(options, os.environ, out)
