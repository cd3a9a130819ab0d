"""Flags checked with the ``--help`` of the engine in a spec's image, with a stand-in Docker client (no daemon).

What is pinned here: how the help container is run (entrypoint overridden, no network, labelled, removed even on
a timeout), that nothing is pulled, the per-image-id cache, vLLM's ``--help=all`` fallback, and how the answer
reaches ``check_many`` and ``autotuner validate``'s report. tests/integration/test_sglang_image_help.py runs the
real SGLang package's help in a real container.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests.exceptions

from autotuner.engines import flagcheck, flags, image_help
from autotuner.engines.flags import check_values
from autotuner.engines.image_help import HelpUnavailable
from autotuner.flag_validation import engine_flag_problems
from autotuner.launch.docker import LABEL_OWNER
from autotuner.validation import load_spec_text

from .test_flags import FAKE_VLLM

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "engine_help"
SGLANG_HELP = gzip.decompress((FIXTURES / "sglang-0.5.23.help.txt.gz").read_bytes())
IMAGE = "lmsysorg/sglang:v0.5.23"
IMAGE_ID = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


class FakeContainer:
    def __init__(self, client: FakeClient, kwargs: dict[str, Any]):
        self.client = client
        self.kwargs = kwargs
        self.removed = False

    def start(self) -> None:
        if self.client.start_error:
            raise docker.errors.APIError(self.client.start_error)

    def wait(self, timeout: float) -> dict[str, Any]:
        self.client.waited_for = timeout
        if self.client.hang:
            raise requests.exceptions.ReadTimeout("read timed out")
        return {"StatusCode": self.client.answer(self.kwargs["command"])[0]}

    def logs(self, stdout: bool, stderr: bool) -> bytes:
        _, out, err = self.client.answer(self.kwargs["command"])
        return out if stdout else err

    def remove(self, force: bool) -> None:
        self.removed = force


class FakeImages:
    def __init__(self, client: FakeClient):
        self.client = client

    def get(self, name: str) -> Any:
        if name not in self.client.local:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return type("Image", (), {"id": self.client.local[name]})()

    def pull(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("validation must never pull")


class FakeContainers:
    def __init__(self, client: FakeClient):
        self.client = client

    def create(self, **kwargs: Any) -> FakeContainer:
        container = FakeContainer(self.client, kwargs)
        self.client.created.append(container)
        return container


class FakeClient:
    """What image_help uses of ``docker.DockerClient``; answers per help command."""

    def __init__(self, answers: dict[str, tuple[int, bytes, bytes]] | None = None):
        self.local = {IMAGE: IMAGE_ID, "other:tag": IMAGE_ID}
        self.answers = answers or {"--help": (0, b"engine noise\n" + SGLANG_HELP, b"")}
        self.created: list[FakeContainer] = []
        self.images = FakeImages(self)
        self.containers = FakeContainers(self)
        self.start_error = ""
        self.hang = False
        self.waited_for = 0.0

    def answer(self, command: list[str]) -> tuple[int, bytes, bytes]:
        return self.answers.get(command[-1], (2, b"", b"error: unrecognized arguments"))

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_local_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No local sglang/vllm interpreter anywhere, and no cached answers before or after."""
    for variable in ("AUTOTUNER_SGLANG_PYTHON", "AUTOTUNER_VLLM_PYTHON"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AUTOTUNER_SGLANG_VENV", str(tmp_path / "none"))
    monkeypatch.setenv("AUTOTUNER_VLLM_VENV", str(tmp_path / "none"))
    monkeypatch.setattr(flags, "find_spec", lambda name: None)
    flags.clear_cache()
    image_help.clear_cache()
    yield
    flags.clear_cache()
    image_help.clear_cache()


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(image_help, "_client", lambda: fake)
    return fake


def test_the_help_container(client: FakeClient) -> None:
    found = image_help.image_help("sglang", IMAGE)
    (container,) = client.created
    kwargs = container.kwargs
    assert kwargs["image"] == IMAGE and kwargs["entrypoint"] == ["python3"]
    assert kwargs["command"] == ["-m", "sglang.launch_server", "--help"]
    assert kwargs["network_mode"] == "none" and kwargs["auto_remove"] is False
    assert kwargs["environment"]["COLUMNS"] == str(image_help.HELP_COLUMNS)
    assert kwargs["labels"][LABEL_OWNER]  # `autotuner reap` removes one a killed validation left behind
    assert "device_requests" not in kwargs and "mounts" not in kwargs
    assert container.removed
    assert found.image_id == IMAGE_ID and found.command == ("python3", "-m", "sglang.launch_server", "--help")
    assert found.help.choices("--schedule-policy") is not None
    assert found.describe().startswith(f"sglang --help of image {IMAGE} (image id 0123456789ab)")


def test_engine_python_is_the_entrypoint(client: FakeClient) -> None:
    image_help.image_help("sglang", IMAGE, "/opt/conda/bin/python")
    assert client.created[0].kwargs["entrypoint"] == ["/opt/conda/bin/python"]


def test_cached_per_image_id(client: FakeClient) -> None:
    first = image_help.image_help("sglang", IMAGE)
    second = image_help.image_help("sglang", "other:tag")  # another tag of the same image
    assert len(client.created) == 1 and second.help is first.help


def test_an_absent_image_is_not_pulled(client: FakeClient) -> None:
    with pytest.raises(
        HelpUnavailable, match=r"^image lmsysorg/sglang:v9 is not present locally \(docker pull it first\)$"
    ):
        image_help.image_help("sglang", "lmsysorg/sglang:v9")
    assert client.created == []


def test_vllm_falls_back_to_plain_help(client: FakeClient) -> None:
    client.answers = {"--help": (0, SGLANG_HELP, b"")}  # an older vLLM refuses --help=all (exit 2)
    found = image_help.image_help("vllm", "other:tag")
    assert [c.kwargs["command"][-1] for c in client.created] == ["--help=all", "--help"]
    assert found.command[-1] == "--help" and all(c.removed for c in client.created)


def test_a_failing_help_says_why_and_is_cached(client: FakeClient) -> None:
    client.answers = {"--help": (1, b"", b"Traceback ...\nModuleNotFoundError: No module named 'torch'\n")}
    for _ in range(2):
        with pytest.raises(HelpUnavailable, match=r"exited with 1: .*No module named 'torch'"):
            image_help.image_help("sglang", IMAGE)
    assert len(client.created) == 1


def test_a_timeout_removes_the_container(client: FakeClient) -> None:
    client.hang = True
    with pytest.raises(HelpUnavailable, match="did not finish within 5s"):
        image_help.image_help("sglang", IMAGE, timeout=5)
    assert client.waited_for == 5 and client.created[0].removed


def test_an_interpreter_missing_in_the_image(client: FakeClient) -> None:
    client.start_error = 'exec: "python3": executable file not found in $PATH'
    with pytest.raises(HelpUnavailable, match="set engine.python to the interpreter inside the image"):
        image_help.image_help("sglang", IMAGE)
    assert client.created[0].removed


def test_no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(HelpUnavailable, match="Docker daemon not reachable at unix:///nonexistent/docker.sock"):
        image_help.image_help("sglang", IMAGE)


# ---- through check_many and the validation report


def test_check_values_reads_the_image_when_no_local_interpreter(client: FakeClient) -> None:
    check = check_values(
        "sglang",
        [("cuda-graph-max-bs", 8), ("schedule-policy", "lifo"), ("disable-radix-cache", False), ("tp-size", 2)],
        image=IMAGE,
    )
    assert check.available and check.image_id == IMAGE_ID
    assert check.checked_with.startswith(f"sglang --help of image {IMAGE} (image id 0123456789ab)")
    unknown, choice = check.problems
    assert unknown.kind == flagcheck.UNKNOWN and unknown.suggestion is not None
    assert unknown.message == f"unknown sglang flag 'cuda-graph-max-bs': did you mean '{unknown.suggestion}'?"
    assert choice.kind == flagcheck.INVALID_CHOICE and choice.message.startswith(
        "schedule-policy: invalid value 'lifo' (choose from lpm, random, fcfs"
    )


def test_without_an_image_nothing_changes(client: FakeClient) -> None:
    check = check_values("sglang", [("schedule-policy", "lpm")])
    assert not check.available and "no sglang interpreter found" in check.checked_with
    assert client.created == []


def test_a_local_interpreter_comes_first(client: FakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in FAKE_VLLM.items():  # a stand-in vllm package that this interpreter imports
        path = tmp_path / "site" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    check = check_values("vllm", [("max-num-seqs", 4)], sys.executable, image="other:tag")
    assert check.available and check.image_id is None and f"({sys.executable})" in check.checked_with
    assert client.created == []


def test_a_local_interpreter_without_the_engine_falls_back_to_the_image(client: FakeClient) -> None:
    check = check_values("sglang", [("schedule-policy", "lpm")], sys.executable, image=IMAGE)
    assert check.available and check.image_id == IMAGE_ID and len(client.created) == 1


def test_absent_image_and_no_interpreter(client: FakeClient) -> None:
    check = check_values("sglang", [("schedule-policy", "lpm")], image="lmsysorg/sglang:v9")
    assert check.checked_with == (
        "not checked: image lmsysorg/sglang:v9 is not present locally (docker pull it first); "
        "no local sglang interpreter either (set AUTOTUNER_SGLANG_PYTHON)"
    )


DOCKER_SPEC = """\
name: sglang-docker
model: {id: Qwen/Qwen2.5-0.5B-Instruct}
engine:
  runtime: sglang
  launcher: docker
  image: IMAGE
  args: {disable-radix-cach: true, mem-fraction-static: 0.8}
parameters:
  schedule-policy: [lpm, fcfs]
  chunked-prefill-size: [512, 1024]
workload: {task: text-to-text, scenarios: ["D(64,64)"], concurrency: [1], max_requests: 4, max_time: 1m}
objective: {maximize: output_throughput}
search: {strategy: grid, max_trials: 4}
"""


def test_validation_report_of_a_docker_spec(client: FakeClient) -> None:
    text = DOCKER_SPEC.replace("IMAGE", IMAGE)
    loaded = load_spec_text("sg.yaml", text)
    report = engine_flag_problems([(loaded.source, loaded.spec)])
    (problem,) = report.problems
    assert str(problem).startswith("sg.yaml:7:10: engine.args.disable-radix-cach: unknown sglang flag")
    assert "did you mean 'disable-radix-cache'?" in str(problem)
    note = report.checked_with["sg.yaml"]
    assert note.startswith(f"sglang --help of image {IMAGE} (image id 0123456789ab)")
    assert "may be another release" not in note  # it is the spec's own image


def test_the_default_image_is_the_launchers(client: FakeClient) -> None:
    text = DOCKER_SPEC.replace("  image: IMAGE\n", "")
    loaded = load_spec_text("sg.yaml", text)
    report = engine_flag_problems([(loaded.source, loaded.spec)])
    assert report.checked_with["sg.yaml"].startswith("not checked: image lmsysorg/sglang:latest is not present")
