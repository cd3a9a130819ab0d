"""Every malformed spec gets an exact, located, actionable message (issue: foundation, "Errors a person can act on").

Each case edits one valid spec and asserts the complete list of problems, with file, line, column, field path and
message, so a regression in any location or wording fails here. Line numbers refer to ``specs.BASE``.
"""

from __future__ import annotations

import pytest

from autotuner.spec import SpecError
from autotuner.validation import load_spec_text

from .specs import BASE, mutate

CASES = [
    pytest.param(
        [("regression:", "regresion:")],
        ["s.yaml:28:1: regresion: unknown key 'regresion': did you mean 'regression'?"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        [("  startup_timeout: 120s", "  startup_timout: 120s")],
        ["s.yaml:8:3: engine.startup_timout: unknown key 'startup_timout': did you mean 'startup_timeout'?"],
        id="unknown-key-in-section",
    ),
    pytest.param(
        [("  warmup_requests: 2", "  warmup_requests: 2\n  max_trials: 3")],
        ["s.yaml:21:3: workload.max_trials: unknown key 'max_trials': it belongs in search"],
        id="key-in-wrong-section",
    ),
    pytest.param(
        [("max_requests: 12", "max_requests: twelve")],
        [
            "s.yaml:18:17: workload.max_requests: Input should be a valid integer, unable to parse string as an integer (got 'twelve')"
        ],
        id="wrong-type-int",
    ),
    pytest.param(
        [("hard: false", "hard: maybe")],
        ["s.yaml:23:27: slo.tpot.hard: Input should be a valid boolean, unable to interpret input (got 'maybe')"],
        id="wrong-type-bool",
    ),
    pytest.param(
        [("ttft: {p90: 2s}", "ttft: {q90: 2s}")],
        [
            "s.yaml:22:10: slo.ttft.q90: unknown percentile 'q90': use mean, max or pN with 0 < N < 100 (p50, p90, p99, p99.9)"
        ],
        id="unknown-percentile",
    ),
    pytest.param(
        [("e2e_latency: {p99: 10s}", "e2e_latency: {p100: 10s}")],
        [
            "s.yaml:24:17: slo.e2e_latency.p100: unknown percentile 'p100': use mean, max or pN with 0 < N < 100 (p50, p90, p99, p99.9)"
        ],
        id="percentile-out-of-range",
    ),
    pytest.param(
        [("ttft: {p90: 2s}", "ttft: {p90: 2 parsecs}")],
        [
            "s.yaml:22:15: slo.ttft.p90: invalid duration '2 parsecs': write a number and a unit (us, ms, s, m, h), e.g. 2s"
        ],
        id="bad-duration",
    ),
    pytest.param(
        [("startup_timeout: 120s", "startup_timeout: -5s")],
        [
            "s.yaml:8:20: engine.startup_timeout: invalid duration '-5s': write a number and a unit (us, ms, s, m, h), e.g. 2s"
        ],
        id="negative-duration",
    ),
    pytest.param(
        [("ttft: {p90: 2s}", "ttft: {}")],
        ["s.yaml:22:9: slo.ttft: give at least one limit, e.g. {p90: 2s}"],
        id="empty-latency-slo",
    ),
    pytest.param(
        [("error_rate: 1%", "error_rate: 5")],
        ["s.yaml:25:15: slo.error_rate: 5 is not a fraction in [0, 1]: write 5% for a percentage"],
        id="bare-percentage-too-big",
    ),
    pytest.param(
        [('["D(64,64)"]', '["D(64, 64)"]')],
        [
            "s.yaml:16:15: workload.scenarios[0]: scenario 'D(64, 64)' contains spaces, which genai-bench rejects: write it without them"
        ],
        id="scenario-with-spaces",
    ),
    pytest.param(
        [('["D(64,64)"]', '["D(64,64)", "X(1)"]')],
        [
            "s.yaml:16:27: workload.scenarios[1]: genai-bench rejects scenario 'X(1)': unknown type 'X' (types: A, D, E, I, N, R, U, dataset; e.g. D(64,64), N(480,240)/(300,150))"
        ],
        id="scenario-unknown-type",
    ),
    pytest.param(
        [('["D(64,64)"]', '["D(64)"]')],
        ["s.yaml:16:15: workload.scenarios[0]: genai-bench rejects scenario 'D(64)': expected the form D(64,64)"],
        id="scenario-bad-arity",
    ),
    pytest.param(
        [('["D(64,64)"]', '["E(64)"]')],
        [
            "s.yaml:16:15: workload.scenarios[0]: scenario 'E(64)' does not fit task 'text-to-text': use e.g. D(64,64), N(480,240)/(300,150), U(50,100)/(100,200)"
        ],
        id="scenario-wrong-task",
    ),
    pytest.param(
        [("task: text-to-text", "task: text2text")],
        [
            "s.yaml:15:9: workload.task: unknown task 'text2text': did you mean 'text-to-text'? (genai-bench tasks: text-to-text, text-to-image, text-to-embeddings, text-to-rerank, text-to-speech, image-text-to-text, image-to-embeddings)"
        ],
        id="unknown-task",
    ),
    pytest.param(
        [("runtime: llamacpp", "runtime: vlm")],
        [
            "s.yaml:5:12: engine.runtime: unknown value 'vlm': did you mean 'vllm'? (choose from llamacpp, vllm, sglang, sim)"
        ],
        id="unknown-runtime",
    ),
    pytest.param(
        [("launcher: process", "launcher: dockr")],
        [
            "s.yaml:6:13: engine.launcher: unknown value 'dockr': did you mean 'docker'? (choose from process, docker, kubernetes, endpoint)"
        ],
        id="unknown-launcher",
    ),
    pytest.param(
        [("  runtime: llamacpp\n", "")],
        ["s.yaml:5:3: engine.runtime: missing required field 'runtime'"],
        id="missing-required",
    ),
    pytest.param(
        [("model: {id: builtin:smollm2}\n", "")],
        ["s.yaml:1:1: model: missing required field 'model'"],
        id="missing-section",
    ),
    pytest.param(
        [
            (
                'parameters:\n  n-parallel: [1, 2, 4]\n  threads: [1, 2]\n  n-batch: {low: 256, high: 2048, log: true, step: 256}\nconstraints: ["n-parallel * threads <= 8"]\n',
                "parameters: {}\n",
            )
        ],
        ["s.yaml:9:13: parameters: the search space is empty: add at least one parameter, e.g. n-parallel: [1, 2, 4]"],
        id="empty-search-space",
    ),
    pytest.param(
        [("threads: [1, 2]", "threads: []")],
        ["s.yaml:11:12: parameters.threads: the list of values is empty: give at least one, e.g. [1, 2]"],
        id="empty-value-list",
    ),
    pytest.param(
        [("threads: [1, 2]", "threads: [1, 2, 1]")],
        ["s.yaml:11:12: parameters.threads: value 1 is listed twice"],
        id="duplicate-value",
    ),
    pytest.param(
        [("threads: [1, 2]", "threads: 2")],
        [
            "s.yaml:11:12: parameters.threads: a parameter is a list of values such as [1, 2, 4] or a range such as {low: 1, high: 8}; a single fixed value belongs in engine.args"
        ],
        id="single-value-parameter",
    ),
    pytest.param(
        [("threads: [1, 2]", "threads: [[1], 2]")],
        ["s.yaml:11:13: parameters.threads[0]: expected a plain value (true/false, a number or a string), got a list"],
        id="nested-list-value",
    ),
    pytest.param(
        [("threads: [1, 2]", "threads: {values: [1, 2]}")],
        ["s.yaml:11:12: parameters.threads: write a list of values as a YAML list, e.g. [1, 2, 4], not {values: ...}"],
        id="values-mapping",
    ),
    pytest.param(
        [("low: 256, high: 2048", "low: 4096, high: 2048")],
        ["s.yaml:12:12: parameters.n-batch: low (4096) must be smaller than high (2048)"],
        id="range-low-above-high",
    ),
    pytest.param(
        [("low: 256, high: 2048", "low: '256', high: 2048")],
        ["s.yaml:12:18: parameters.n-batch.low: expected a number, got '256'"],
        id="range-string-bound",
    ),
    pytest.param(
        [("low: 256, high: 2048, log: true", "low: 0, high: 2048, log: true")],
        ["s.yaml:12:12: parameters.n-batch: a log range needs low > 0 (got 0)"],
        id="range-log-nonpositive",
    ),
    pytest.param(
        [("  threads: [1, 2]", "  --threads: [1, 2]")],
        ["s.yaml:11:3: parameters.--threads: write flag names without leading dashes: 'threads', not '--threads'"],
        id="flag-with-dashes",
    ),
    pytest.param(
        [('"n-parallel * threads <= 8"', '"n-parallel * threads > 100"')],
        [
            "s.yaml:13:14: constraints: the constraints exclude every one of the 48 configs in the grid",
            "s.yaml:27:74: search.baseline: the baseline config violates constraint 'n-parallel * threads > 100'",
        ],
        id="constraint-excludes-all",
    ),
    pytest.param(
        [('"n-parallel * threads <= 8"', '"n-paralel * threads <= 8"')],
        [
            "s.yaml:13:15: constraints[0]: unknown name 'n-paralel' in constraint 'n-paralel * threads <= 8': did you mean 'n-parallel'?"
        ],
        id="constraint-unknown-name",
    ),
    pytest.param(
        [('"n-parallel * threads <= 8"', '"n-parallel * <= 8"')],
        ["s.yaml:13:15: constraints[0]: invalid expression 'n-parallel * <= 8': invalid syntax"],
        id="constraint-syntax",
    ),
    pytest.param(
        [('"n-parallel * threads <= 8"', "\"__import__('os').system('id')\"")],
        [
            "s.yaml:13:15: constraints[0]: only min, max, abs can be called in a constraint (\"__import__('os').system('id')\")"
        ],
        id="constraint-code-injection",
    ),
    pytest.param(
        [('"n-parallel * threads <= 8"', '"threads.__class__ == 1"')],
        ["s.yaml:13:15: constraints[0]: Attribute is not allowed in a constraint ('threads.__class__ == 1')"],
        id="constraint-attribute",
    ),
    pytest.param(
        [("baseline: {n-parallel: 1, threads: 2}", "baseline: {n-paralel: 1, threads: 2}")],
        [
            "s.yaml:27:75: search.baseline.n-paralel: unknown parameter 'n-paralel': did you mean 'n-parallel'? (parameters: n-parallel, threads, n-batch)"
        ],
        id="baseline-unknown-param",
    ),
    pytest.param(
        [("baseline: {n-parallel: 1, threads: 2}", "baseline: {n-parallel: 8, threads: 2}")],
        ["s.yaml:27:74: search.baseline: the baseline config violates constraint 'n-parallel * threads <= 8'"],
        id="baseline-violates-constraint",
    ),
    pytest.param(
        [("{maximize: output_throughput}", "{maximize: e2e_latency.p90}")],
        ["s.yaml:26:12: objective: maximize e2e_latency.p90 would prefer worse configs: lower is better, use minimize"],
        id="objective-wrong-direction",
    ),
    pytest.param(
        [("{maximize: output_throughput}", "{maximise: output_throughput}")],
        ["s.yaml:26:12: objective: unknown direction 'maximise': did you mean 'maximize'? (use maximize or minimize)"],
        id="objective-unknown-direction",
    ),
    pytest.param(
        [("{maximize: output_throughput}", "{maximize: output_thruput}")],
        [
            "s.yaml:26:12: objective: unknown metric 'output_thruput': did you mean 'output_throughput'? (known: ttft, tpot, e2e_latency, output_throughput, total_throughput, requests_per_second, goodput, error_rate)"
        ],
        id="objective-unknown-metric",
    ),
    pytest.param(
        [("{maximize: output_throughput}", "{minimize: ttft}")],
        ["s.yaml:26:12: objective: ttft is a distribution: say which statistic, e.g. ttft.p90 or ttft.mean"],
        id="objective-missing-statistic",
    ),
    pytest.param(
        [("strategy: auto", "strategy: bayes")],
        ["s.yaml:27:20: search.strategy: unknown value 'bayes' (choose from auto, grid, random, tpe, nsga2)"],
        id="unknown-strategy",
    ),
    pytest.param(
        [
            ("strategy: auto", "strategy: grid"),
            ("n-batch: {low: 256, high: 2048, log: true, step: 256}", "mem: {low: 0.5, high: 0.9}"),
        ],
        [
            "s.yaml:12:8: parameters.mem: strategy grid cannot enumerate a float range without step: add step, or use strategy random/tpe"
        ],
        id="grid-continuous",
    ),
    pytest.param(
        [("name: smollm2-cpu", "name: SmolLM2_CPU")],
        [
            "s.yaml:1:7: name: invalid name 'SmolLM2_CPU': use lowercase letters, digits and '-' (e.g. smollm2-cpu), at most 63 characters, not starting or ending with '-'"
        ],
        id="invalid-name",
    ),
    pytest.param(
        [("builtin:smollm2", "builtin:smolm2")],
        ["s.yaml:3:13: model.id: unknown builtin model 'smolm2': did you mean 'smollm2'? (builtin models: smollm2)"],
        id="unknown-builtin-model",
    ),
    pytest.param(
        [("  threads: [1, 2]", "  threads: [1, 2]\n  threads: [1]")],
        ["s.yaml:12:3: parameters.threads: duplicate key 'threads': it is already set above"],
        id="duplicate-key",
    ),
    pytest.param(
        [("  threads: [1, 2]", "  threads: [1, 2")],
        ["s.yaml:12:10: <spec>: YAML syntax error: expected ',' or ']', but got ':'"],
        id="yaml-syntax",
    ),
    pytest.param(
        [("concurrency: [1, 4]", "concurrency: [1, 4, 4]")],
        ["s.yaml:17:16: workload.concurrency: concurrency 4 is listed twice"],
        id="concurrency-duplicate",
    ),
    pytest.param(
        [("concurrency: [1, 4]", "concurrency: [0, 4]")],
        ["s.yaml:17:17: workload.concurrency[0]: Input should be greater than or equal to 1 (got 0)"],
        id="concurrency-zero",
    ),
    pytest.param(
        [("launcher: process", "launcher: process\n  image: foo:1")],
        [
            "s.yaml:7:10: engine.image: engine.image is only used by the docker and kubernetes launchers (launcher is process)"
        ],
        id="image-with-process",
    ),
    pytest.param(
        [("launcher: process", "launcher: process\n  docker: {pull: never}")],
        ["s.yaml:7:11: engine.docker: engine.docker is only used by the docker launcher (launcher is process)"],
        id="docker-block-with-process",
    ),
    pytest.param(
        [
            (
                "launcher: process",
                "launcher: docker\n  image: llama:1\n  docker:\n    mounts: [{source: /a, target: models}]",
            )
        ],
        ["s.yaml:9:35: engine.docker.mounts[0].target: target 'models' must be an absolute path inside the container"],
        id="docker-mount-relative-target",
    ),
    pytest.param(
        [
            (
                "launcher: process",
                "launcher: docker\n  image: llama:1\n  docker:\n    mounts:\n      - {source: /a, target: /m}\n"
                "      - {source: /b, target: /m/}",
            )
        ],
        [
            "s.yaml:11:30: engine.docker.mounts[1].target: two mounts at /m in the container: this one and "
            "engine.docker.mounts[0]"
        ],
        id="docker-mounts-at-one-place",
    ),
    pytest.param(
        [
            (
                "launcher: process",
                "launcher: docker\n  image: llama:1\n  docker: {ipc: hostt, shm_size: 2 GB, pull: sometimes}",
            )
        ],
        [
            "s.yaml:8:46: engine.docker.pull: unknown value 'sometimes' (choose from missing, never, always)",
            "s.yaml:8:17: engine.docker.ipc: unknown IPC mode 'hostt': did you mean 'host'? (choose from host, private, "
            "shareable, none, container:<name>)",
            "s.yaml:8:34: engine.docker.shm_size: invalid shm_size '2 GB': a size like 8g, 512m or 1073741824 (bytes)",
        ],
        id="docker-settings-values",
    ),
    pytest.param(
        [("launcher: process", "launcher: endpoint")],
        [
            "s.yaml:5:3: engine: launcher endpoint needs engine.url, the server to benchmark",
            "s.yaml:7:9: engine.args: launcher endpoint starts nothing, so fixed flags would be silently ignored: remove engine.args",
            "s.yaml:10:3: parameters.n-parallel: launcher endpoint starts nothing, so launch flags cannot be tuned; use request.* parameters or another launcher",
            "s.yaml:11:3: parameters.threads: launcher endpoint starts nothing, so launch flags cannot be tuned; use request.* parameters or another launcher",
            "s.yaml:12:3: parameters.n-batch: launcher endpoint starts nothing, so launch flags cannot be tuned; use request.* parameters or another launcher",
        ],
        id="endpoint-without-url",
    ),
    pytest.param(
        [("args: {n-ctx: 4096}", "args: {n-ctx: 4096, threads: 2}")],
        ["s.yaml:7:23: engine.args.threads: 'threads' is also a search parameter: keep it in one place"],
        id="arg-also-parameter",
    ),
    pytest.param(
        [("launcher: process", "launcher: {{ env.LAUNCHER }}")],
        [
            "s.yaml:6:1: <spec>: template error: environment variable LAUNCHER is not set: set it, or write {{ env.LAUNCHER | default('...') }}"
        ],
        id="jinja-undefined",
    ),
    pytest.param(
        [("launcher: process", "launcher: {{ env.LAUNCHER ")],
        ["s.yaml:7:1: <spec>: template error: expected token 'end of print statement', got 'args'"],
        id="jinja-syntax",
    ),
    pytest.param(
        [("launcher: process", "launcher: {{ ''.__class__.__mro__ }}")],
        ["s.yaml:6:1: <spec>: template error: access to attribute '__class__' of 'str' object is unsafe."],
        id="jinja-sandbox",
    ),
    pytest.param(
        [("  startup_timeout: 120s", "  startup_timeout: 120s\n  env: {1BAD: x}")],
        ["s.yaml:9:9: engine.env.1BAD: invalid environment variable name '1BAD'"],
        id="env-bad-name",
    ),
    pytest.param(
        [("regression: {threshold: 5%}", "regression: {threshold: 5%, confidence: 30%}")],
        ["s.yaml:28:41: regression.confidence: confidence must lie between 50% and 99.99%"],
        id="confidence-range",
    ),
]


@pytest.mark.parametrize(("edits", "expected"), CASES)
def test_malformed_spec_is_reported_exactly(edits: list[tuple[str, str]], expected: list[str]) -> None:
    text = BASE
    for old, new in edits:
        text = mutate(old, new, text)
    with pytest.raises(SpecError) as caught:
        load_spec_text("s.yaml", text, environ={})
    assert [str(problem) for problem in caught.value.problems] == expected


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_base_spec_is_valid() -> None:
    loaded = load_spec_text("s.yaml", BASE, environ={})
    assert loaded.spec.name == "smollm2-cpu"
