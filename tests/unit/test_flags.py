"""Flag validation against engines' own parsers: ours in-process (llamacpp, sim), others through flagcheck.py.

The subprocess path is exercised here with a stand-in ``vllm`` package on PYTHONPATH (a few lines of argparse),
so the protocol is tested in milliseconds; tests/integration/test_vllm.py runs it against the real vLLM.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from autotuner.engines import flagcheck, flags
from autotuner.engines.flags import check_flags, check_values, engine_python


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    flags.clear_cache()
    yield
    flags.clear_cache()


class TestLlamaCpp:
    def test_valid_flags_pass(self) -> None:
        check = check_flags(
            "llamacpp",
            {"n-parallel": 4, "threads": 2, "flash-attn": "auto", "cont-batching": False, "metrics": True},
        )
        assert check.available and check.ok, check.problems
        assert check.checked_with == "llamacpp parser (in-process)"

    def test_unknown_flag_gets_a_suggestion(self) -> None:
        (problem,) = check_flags("llamacpp", {"n-paralel": 4}).problems
        assert problem.kind == flagcheck.UNKNOWN and problem.suggestion == "n-parallel"
        assert problem.message == "unknown llamacpp flag 'n-paralel': did you mean 'n-parallel'?"

    def test_value_outside_the_choices_lists_them(self) -> None:
        (problem,) = check_flags("llamacpp", {"cache-type-k": "q9_0"}).problems
        assert problem.kind == flagcheck.INVALID_CHOICE
        assert problem.choices is not None and "q8_0" in problem.choices and "q8_0" in problem.message

    def test_value_of_the_wrong_type(self) -> None:
        (problem,) = check_flags("llamacpp", {"n-ctx": "big"}).problems
        assert problem.kind == flagcheck.INVALID_VALUE and "invalid int value" in problem.message

    def test_a_range_check_of_the_parser_is_reported(self) -> None:
        (problem,) = check_flags("llamacpp", {"poll": 101}).problems
        assert problem.kind == flagcheck.INVALID_VALUE and "between 0 and 100" in problem.message

    def test_every_value_of_a_parameter(self) -> None:
        check = check_values("llamacpp", [("n-parallel", 1), ("n-parallel", 0), ("n-parallel", 8)])
        assert [(p.name, p.value) for p in check.problems] == [("n-parallel", 0)]


class TestSim:
    def test_abbreviation_is_not_a_flag(self) -> None:
        # argparse would accept --max-num-seq for --max-num-seqs; a spec should spell the flag out.
        (problem,) = check_flags("sim", {"max-num-seq": 8}).problems
        assert problem.kind == flagcheck.UNKNOWN and problem.suggestion == "max-num-seqs"

    def test_booleans_in_both_forms(self) -> None:
        assert check_flags("sim", {"enable-prefix-caching": True}).ok
        assert check_flags("sim", {"enable-prefix-caching": False}).ok

    def test_store_true_switch_has_no_negative_form(self) -> None:
        (problem,) = check_flags("sim", {"hang": False}).problems  # sim renders false as --no-hang
        assert problem.kind == flagcheck.NOT_NEGATABLE and "leave the flag out" in problem.message

    def test_bad_number(self) -> None:
        (problem,) = check_flags("sim", {"time-scale": -1}).problems
        assert problem.kind == flagcheck.INVALID_VALUE

    def test_env_and_request_names_are_skipped(self) -> None:
        check = check_flags("sim", {"env.OMP_NUM_THREADS": 2, "request.temperature": 0.5, "max-num-seqs": 4})
        assert check.ok and check.skipped == ("env.OMP_NUM_THREADS", "request.temperature")


class TestCheckOne:
    """flagcheck's rules on a hand-made parser: store-true engines, required arguments, positionals."""

    @staticmethod
    def parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        parser.add_argument("--model-path", required=True)
        parser.add_argument("--disable-radix-cache", action="store_true")
        parser.add_argument("--schedule-policy", choices=["lpm", "fcfs"])
        parser.add_argument("--tp", type=int)
        parser.add_argument("model_tag", nargs="?")
        return parser

    def check(self, *flag: tuple[str, list[str]]) -> list[flagcheck.Result]:
        return flagcheck.check_all(self.parser(), list(flag))

    def test_store_true_false_renders_nothing_but_the_name_must_exist(self) -> None:
        assert self.check(("disable-radix-cache", []), ("disable-radix-cash", [])) == [
            {"ok": True},
            {
                "ok": False,
                "kind": flagcheck.UNKNOWN,
                "message": "unknown flag --disable-radix-cash: did you mean --disable-radix-cache?",
                "suggestion": "--disable-radix-cache",
            },
        ]

    def test_required_arguments_are_filled_in(self) -> None:
        assert self.check(("tp", ["--tp", "2"]), ("schedule-policy", ["--schedule-policy", "fcfs"])) == [
            {"ok": True},
            {"ok": True},
        ]

    def test_the_required_flag_itself_is_checked(self) -> None:
        assert self.check(("model-path", ["--model-path", "/m"])) == [{"ok": True}]

    def test_a_switch_does_not_hand_its_value_to_a_positional(self) -> None:
        (result,) = self.check(("disable-radix-cache", ["--disable-radix-cache", "1"]))
        assert result["kind"] == flagcheck.INVALID_VALUE and "takes no value" in result["message"]

    def test_choice_error_lists_the_choices(self) -> None:
        (result,) = self.check(("schedule-policy", ["--schedule-policy", "lifo"]))
        assert result["kind"] == flagcheck.INVALID_CHOICE and result["choices"] == ["lpm", "fcfs"]

    def test_deprecated_flags_are_accepted_and_marked(self) -> None:
        parser = self.parser()
        old = parser.add_argument("--old-knob", type=int)
        parser._deprecated = {old}  # type: ignore[attr-defined] # how vLLM's FlexibleArgumentParser marks them
        assert flagcheck.check_all(parser, [("old-knob", ["--old-knob", "1"])]) == [{"ok": True, "deprecated": True}]

    def test_nothing_exits(self) -> None:
        (result,) = self.check(("tp", ["--tp", "two"]))
        assert result["ok"] is False and "invalid int value" in result["message"]


FAKE_VLLM = {
    "vllm/__init__.py": "",
    "vllm/utils/__init__.py": "",
    "vllm/utils/argparse_utils.py": "import argparse\nFlexibleArgumentParser = argparse.ArgumentParser\n",
    "vllm/entrypoints/__init__.py": "",
    "vllm/entrypoints/launchers/__init__.py": "",
    "vllm/entrypoints/launchers/cli_args.py": textwrap.dedent(
        """
        import argparse, sys
        print("engine noise on stdout while importing")  # flagcheck must keep its answer clean of this

        def make_arg_parser(parser):
            parser.add_argument("model_tag", nargs="?")
            parser.add_argument("--max-num-seqs", type=int)
            parser.add_argument("--kv-cache-dtype", choices=["auto", "fp8"])
            parser.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction)
            return parser
        """
    ),
}


@pytest.fixture
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, text in FAKE_VLLM.items():
        path = tmp_path / "site" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    return sys.executable


class TestSubprocess:
    def test_the_engine_parser_answers_through_flagcheck(self, fake_vllm: str) -> None:
        check = check_values(
            "vllm",
            [
                ("max-num-seq", 4),
                ("kv-cache-dtype", "fp9"),
                ("enable-prefix-caching", False),
                ("max-num-seqs", 4),
                ("env.VLLM_CPU_KVCACHE_SPACE", 2),
            ],
            fake_vllm,
        )
        assert check.available and f"({fake_vllm})" in check.checked_with
        assert [(p.name, p.kind, p.suggestion, p.choices) for p in check.problems] == [
            ("max-num-seq", flagcheck.UNKNOWN, "max-num-seqs", None),
            ("kv-cache-dtype", flagcheck.INVALID_CHOICE, None, ("auto", "fp8")),
        ]
        assert check.skipped == ("env.VLLM_CPU_KVCACHE_SPACE",)

    def test_answers_are_cached_per_interpreter(self, fake_vllm: str, monkeypatch: pytest.MonkeyPatch) -> None:
        assert check_flags("vllm", {"max-num-seqs": 4}, fake_vllm).ok

        def no_subprocess(*args: object, **kwargs: object) -> None:
            raise AssertionError("asked the engine again for a flag it already answered")

        monkeypatch.setattr("autotuner.engines.flags.subprocess.run", no_subprocess)
        assert check_flags("vllm", {"max-num-seqs": 4}, fake_vllm).ok

    def test_engine_that_does_not_import_is_not_checked(self) -> None:
        check = check_flags("sglang", {"schedule-policy": "lpm"}, sys.executable)  # no sglang here
        assert not check.available and check.ok
        assert check.checked_with.startswith("not checked: sglang does not import with") and sys.executable in (
            check.checked_with
        )

    def test_missing_interpreter_is_not_checked(self) -> None:
        check = check_flags("vllm", {"max-num-seqs": 4}, "/nonexistent/bin/python")
        assert not check.available and check.ok
        assert check.checked_with == "not checked: vllm interpreter /nonexistent/bin/python not found"

    def test_no_interpreter_anywhere(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AUTOTUNER_SGLANG_PYTHON", raising=False)
        monkeypatch.setenv("AUTOTUNER_SGLANG_VENV", str(tmp_path / "none"))
        monkeypatch.setattr(flags, "find_spec", lambda name: None)
        assert engine_python("sglang") is None
        check = check_flags("sglang", {"schedule-policy": "lpm"})
        assert not check.available
        assert "no sglang interpreter found" in check.checked_with and "AUTOTUNER_SGLANG_PYTHON" in check.checked_with


class TestEnginePython:
    def test_order_of_preference(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        venv_python = tmp_path / "venv" / "bin" / "python"
        venv_python.parent.mkdir(parents=True)
        venv_python.touch()
        monkeypatch.setenv("AUTOTUNER_VLLM_VENV", str(tmp_path / "venv"))
        monkeypatch.delenv("AUTOTUNER_VLLM_PYTHON", raising=False)
        assert engine_python("vllm") == str(venv_python)
        monkeypatch.setenv("AUTOTUNER_VLLM_PYTHON", "/env/python")
        assert engine_python("vllm") == "/env/python"
        assert engine_python("vllm", "/spec/python") == "/spec/python"
