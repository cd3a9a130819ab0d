"""Secrets in, nothing out: run the tool with an HF token, a GitHub token and a proxy password set, then scan
everything it produced for them.

The environment holds ``HF_TOKEN``, ``GITHUB_TOKEN`` and an ``https_proxy`` whose password is percent-encoded
(so its encoded and decoded forms differ). The proxy points at a closed port on loopback: engines and health
checks are on loopback too and must bypass it. Runs:

- ``autotuner tune`` on a sim spec with a healthy config and one that fails at start (failure reasons carry log
  tails), then ``autotuner report`` to re-render it;
- ``autotuner tune`` and ``autotuner validate`` on specs whose *template* reads the secrets (a pull request can
  write ``{{ env.HF_TOKEN }}`` into a description, an engine variable or an invalid value that an error message
  echoes): the design says secrets are masked in every log, report and comment whatever brought them there;
- ``pytest --tune --junitxml --tune-benchmark-json`` on the first spec, when the plugin is installed.

Then every file under the sandbox (reports, logs, results, junit, benchmark JSON, engine records) and every
captured stdout/stderr is searched for each secret in raw, percent-encoded, JSON-escaped and base64 (HTTP basic
proxy authorization) forms. GitHub comment bodies and job summaries: not produced by the tool yet.

    python benchmarks/leaks.py
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sandbox import Sandbox, spec_text  # noqa: E402

HF_TOKEN = "hf_secretXYZqwertyuiopASDFGHJKL1234567"
GITHUB_TOKEN = "ghp_secretXYZ0123456789abcdefghijklmnopq"
PROXY_USER = "proxyuser"
PROXY_PASSWORD = "Pr0xy@Passw0rd!"  # decoded; the URL carries it percent-encoded
PROXY_URL = f"http://{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}@127.0.0.1:9/"
ENVIRONMENT = {
    "HF_TOKEN": HF_TOKEN,
    "GITHUB_TOKEN": GITHUB_TOKEN,
    "https_proxy": PROXY_URL,
    "HTTPS_PROXY": PROXY_URL,
    "http_proxy": PROXY_URL,
}


def forms() -> dict[str, str]:
    """Every spelling under which a secret could appear in a file or an output."""
    found: dict[str, str] = {}
    for label, secret in (("HF_TOKEN", HF_TOKEN), ("GITHUB_TOKEN", GITHUB_TOKEN), ("proxy password", PROXY_PASSWORD)):
        for how, text in (
            ("raw", secret),
            ("percent-encoded", quote(secret, safe="")),
            ("form-encoded", quote_plus(secret)),
            ("json", json.dumps(secret)[1:-1]),
        ):
            found.setdefault(text, f"{label} ({how})")
    basic = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    found[basic] = "proxy credentials (base64, Proxy-Authorization)"
    return found


@dataclass
class Scan:
    sources: list[str] = field(default_factory=list)  # what was produced, one line each
    files: int = 0
    outputs: int = 0
    hits: list[str] = field(default_factory=list)  # "where: which secret"

    def search(self, where: str, text: str) -> None:
        for needle, label in forms().items():
            if needle in text:
                self.hits.append(f"{where}: {label} x{text.count(needle)}")


def _spec_files(box: Sandbox) -> set[Path]:
    return {p for p in box.root.glob("*.yaml")}


def run(root: Path) -> Scan:
    box = Sandbox(root, extra_env=dict(ENVIRONMENT))
    scan = Scan()
    outputs: dict[str, str] = {}

    name = "leak-plain"
    engine = "{runtime: sim, args: {time-scale: 0.05, decode-step-ms: 5, kv-cache-tokens: 65536}, startup_timeout: 20s}"
    spec = box.write_spec(name, spec_text(name, engine=engine, parameters="{max-num-seqs: [1, 64]}"))
    tune = box.run(box.tool(*box.tune_args(spec)), timeout=300)
    outputs["tune (environment only)"] = tune.output
    scan.sources.append(f"tune {name}: exit {tune.code}")
    results = box.results(name)
    if results.exists():
        report = box.run(box.tool("report", str(results), "--out", str(box.reports / "rerendered")), timeout=300)
        outputs["report"] = report.output
        scan.sources.append(f"report: exit {report.code}")

    echo = "leak-template"
    templated = (
        spec_text(
            echo,
            engine="{runtime: sim, args: {time-scale: 0.05, decode-step-ms: 5}, env: {GH: '{{ env.GITHUB_TOKEN }}'}, "
            "startup_timeout: 20s}",
            parameters="{max-num-seqs: [1]}",
        )
        + "description: 'token {{ env.HF_TOKEN }} proxy {{ env.https_proxy }}'\n"
    )
    echoed = box.write_spec(echo, templated)
    tune2 = box.run(box.tool(*box.tune_args(echoed)), timeout=300)
    outputs["tune (spec template reads the secrets)"] = tune2.output
    scan.sources.append(f"tune {echo}: exit {tune2.code}")

    invalid = box.write_spec(
        "leak-invalid", spec_text("leak-invalid", engine="{runtime: '{{ env.HF_TOKEN }}', args: {x: 1}}")
    )
    validate = box.run(box.tool("validate", str(invalid)), timeout=120)
    outputs["validate (an invalid value is the token)"] = validate.output
    scan.sources.append(f"validate leak-invalid: exit {validate.code}")

    help_text = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, timeout=120)
    if "--tune " in help_text.stdout:
        junit, bench = box.root / "junit.xml", box.root / "benchmark.json"
        command = [
            sys.executable, "-m", "pytest", "--tune", str(spec), "-p", "no:cacheprovider", "-c", "/dev/null",
            "--rootdir", str(box.root), "--junitxml", str(junit), "--tune-benchmark-json", str(bench),
            "--tune-report-dir", str(box.root / "pytest-reports"), "-q",
        ]  # fmt: skip
        plugin = box.run(command, timeout=300)
        outputs["pytest --tune"] = plugin.output
        scan.sources.append(f"pytest --tune: exit {plugin.code}, junit {'written' if junit.exists() else 'missing'}")
    else:
        scan.sources.append("pytest --tune: not installed")
    scan.sources.append("GitHub comment body, job summary: not produced by the tool yet")

    for label, text in outputs.items():
        scan.outputs += 1
        scan.search(f"output of {label}", text)
    specs = _spec_files(box)
    for path in box.files():
        if path in specs:
            continue
        scan.files += 1
        scan.search(str(path.relative_to(box.root)), path.read_bytes().decode("utf-8", "replace"))
    return scan


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="autotuner-leaks-"))
    try:
        scan = run(root)
    finally:
        Sandbox(root).kill_leftovers()
        shutil.rmtree(root, ignore_errors=True)
    for line in scan.sources:
        print(line)
    print(f"scanned {scan.files} files and {scan.outputs} outputs for {len(forms())} secret spellings")
    print(f"occurrences: {len(scan.hits)}")
    for hit in scan.hits:
        print(f"  {hit}")
    return 1 if scan.hits else 0


if __name__ == "__main__":
    sys.exit(main())
