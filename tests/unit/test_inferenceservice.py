"""Rendering the OME InferenceService: valid against the schema, safe for any value, secrets kept out (pure)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from autotuner.engines.profile import EngineProfile, FlagValue
from autotuner.engines.runtimes import SGLANG, SIM, VLLM
from autotuner.launch.base import LaunchRequest
from autotuner.launch.inferenceservice import (
    MODEL_PATH,
    ClusterSettings,
    ManifestError,
    label_value,
    missing_flags,
    render,
    resource_name,
    to_yaml,
    validate,
)

OWNER = "runner-7:4242:1717171717.25"


def request(profile: EngineProfile = VLLM, **overrides: Any) -> LaunchRequest:
    flags: dict[str, FlagValue] = {"max-num-seqs": 64, "gpu-memory-utilization": 0.9}
    values: dict[str, Any] = dict(
        run_id="run-20250101", name="trial-3", profile=profile, model="llama-3-2-1b-instruct", served_name="llama",
        flags=flags, env={}, log_dir=Path("/tmp/unused"),
    )  # fmt: skip
    values.update(overrides)
    return LaunchRequest(**values)


@pytest.mark.parametrize("profile", [VLLM, SGLANG], ids=lambda p: p.runtime)
@pytest.mark.parametrize("gpus", [0, 2])
def test_renders_a_valid_inferenceservice(profile: EngineProfile, gpus: int) -> None:
    flags: dict[str, FlagValue] = {"max-num-seqs": 64, "enable-prefix-caching": True, "tp-size": gpus or 1}
    manifest = render(request(profile, gpus=gpus, flags=flags, image=profile.default_image), ClusterSettings(), OWNER)
    validate(manifest.body)  # render validated already; say so here too
    body = manifest.body
    assert body["apiVersion"] == "ome.io/v1beta1" and body["kind"] == "InferenceService"
    assert body["spec"]["model"] == {"name": "llama-3-2-1b-instruct", "kind": "ClusterBaseModel"}
    runner = body["spec"]["engine"]["runner"]
    assert runner["name"] == "ome-container" and runner["image"] == profile.default_image
    assert runner["command"] == ["python3", "-m", profile.module]
    model_flag = "--model-path" if profile is SGLANG else "--model"
    assert runner["args"][:2] == [model_flag, MODEL_PATH]
    assert runner["args"][-5:] == ["--max-num-seqs", "64", "--enable-prefix-caching", "--tp-size", str(gpus or 1)]
    assert ["--host", "0.0.0.0", "--port", "8080"] == runner["args"][4:8]
    if gpus:
        assert runner["resources"] == {"limits": {"nvidia.com/gpu": "2"}, "requests": {"nvidia.com/gpu": "2"}}
    else:
        assert "resources" not in runner
    assert body["spec"]["engine"]["minReplicas"] == body["spec"]["engine"]["maxReplicas"] == 1
    assert manifest.tuned == (("--max-num-seqs", "64"), ("--enable-prefix-caching",), ("--tp-size", str(gpus or 1)))


def test_labels_and_annotations_name_the_run_and_owner() -> None:
    body = render(request(), ClusterSettings(namespace="tuning"), OWNER).body
    metadata = body["metadata"]
    assert metadata["namespace"] == "tuning"
    assert metadata["annotations"] == {
        "autotuner.run": "run-20250101",
        "autotuner.name": "trial-3",
        "autotuner.owner": OWNER,
    }
    assert metadata["labels"]["autotuner.owner"] == "runner-7-4242-1717171717.25"  # colons are not label characters
    assert body["spec"]["engine"]["labels"] == metadata["labels"]  # OME copies engine labels onto the pods


HOSTILE = [
    'say "hi"',
    "two\nlines",
    "{{ 7 * 7 }}",
    "{% if true %}x{% endif %}",
    "key: value # comment",
    "- item",
    "---\nkind: Secret",
    '"]\n    image: evil\n    args: ["',
    "tab\there",
    "nel\x85and\u2028separators",
    "emoji \U0001f680 and é",
    "",
    "~",
    "null",
    "yes",
    "0x10",
    "1e3",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_any_flag_value_stays_one_string(value: str) -> None:
    manifest = render(request(flags={"chat-template": value}), ClusterSettings(), OWNER)
    runner = manifest.body["spec"]["engine"]["runner"]
    assert runner["args"][-2:] == ["--chat-template", value]
    assert set(runner) == {"name", "command", "args", "env"}  # nothing injected next to args
    assert yaml.safe_load(manifest.text) == manifest.body


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_names_and_env_values(value: str) -> None:
    settings = ClusterSettings()
    manifest = render(request(run_id=f"run {value}", name=f"trial/{value}", env={"NOTE": value}), settings, value)
    body = manifest.body
    assert body["metadata"]["annotations"]["autotuner.run"] == f"run {value}"
    assert body["metadata"]["annotations"]["autotuner.owner"] == value
    assert {"name": "NOTE", "value": value} in body["spec"]["engine"]["runner"]["env"]


def test_to_yaml_is_one_line() -> None:
    for value in HOSTILE:
        text = to_yaml([value, {"k": value}, 3, True, None])
        assert "\n" not in text and yaml.safe_load(text) == [value, {"k": value}, 3, True, None]


def test_names_are_valid_and_distinct() -> None:
    names = {resource_name("run-1", f"trial-{i}") for i in range(50)}
    assert len(names) == 50
    for run_id, name in [("R" * 80, "T" * 80), ("42", "7"), ("run/ü", "trial 1"), ("", "")]:
        generated = resource_name(run_id, name)
        assert generated[0].isalpha() and len(generated) <= 56
        assert generated == resource_name(run_id, name)  # stable: reaping and logs can name it again
    assert resource_name("a", "b-c") != resource_name("a-b", "c")
    assert label_value("host:1:2.5") == "host-1-2.5" and len(label_value("x" * 99)) == 63


def test_secrets_are_referenced_never_inlined() -> None:
    env = {"HF_TOKEN": "hf_abcdefghijklmnop", "https_proxy": "http://user:hunter22@proxy:3128", "PLAIN": "1"}
    manifest = render(request(env=env), ClusterSettings(), OWNER)
    assert "hf_abcdefghijklmnop" not in manifest.text and "hunter22" not in manifest.text
    assert manifest.body["spec"]["engine"]["runner"]["env"][-1] == {"name": "PLAIN", "value": "1"}
    assert any("HF_TOKEN is not passed" in note for note in manifest.notes)
    settings = ClusterSettings.from_extra({"hf_token_secret": "hf-token", "secret.https_proxy": "proxy:url"})
    runner = render(request(env=env), settings, OWNER).body["spec"]["engine"]["runner"]
    references = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in runner["env"] if "valueFrom" in e}
    assert references == {
        "HF_TOKEN": {"name": "hf-token", "key": "token"},
        "HUGGING_FACE_HUB_TOKEN": {"name": "hf-token", "key": "token"},
        "https_proxy": {"name": "proxy", "key": "url"},
    }


def test_profile_env_comes_first_and_request_env_wins() -> None:
    runner = render(request(env={"VLLM_SERVER_DEV_MODE": "0"}), ClusterSettings(), OWNER).body["spec"]["engine"][
        "runner"
    ]
    assert runner["env"] == [{"name": "VLLM_SERVER_DEV_MODE", "value": "0"}]


def test_model_reference() -> None:
    hub = request(model="meta-llama/Llama-3.2-1B-Instruct")
    with pytest.raises(ManifestError, match="base_model"):
        render(hub, ClusterSettings(), OWNER)
    body = render(hub, ClusterSettings(runtime="vllm-any", runtime_kind="ServingRuntime"), OWNER).body
    assert "model" not in body["spec"] and body["spec"]["runtime"] == {"name": "vllm-any", "kind": "ServingRuntime"}
    assert body["spec"]["engine"]["runner"]["args"][:2] == ["--model", "meta-llama/Llama-3.2-1B-Instruct"]
    named = render(
        hub, ClusterSettings.from_extra({"base_model": "llama-3-2-1b", "base_model_kind": "BaseModel"}), OWNER
    )
    assert named.body["spec"]["model"] == {"name": "llama-3-2-1b", "kind": "BaseModel"}


def test_no_image_keeps_the_runtimes() -> None:
    runner = render(request(profile=SIM, model="sim-model"), ClusterSettings(), OWNER).body["spec"]["engine"]["runner"]
    assert "image" not in runner


def test_cpu_and_memory() -> None:
    settings = ClusterSettings.from_extra({"cpu": "4", "memory": "16Gi"})
    runner = render(request(gpus=1), settings, OWNER).body["spec"]["engine"]["runner"]
    assert runner["resources"]["limits"] == {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"}
    with pytest.raises(ManifestError, match="memory"):
        render(request(), ClusterSettings.from_extra({"memory": "lots"}), OWNER)


def test_settings() -> None:
    with pytest.raises(ManifestError, match="namspace"):
        ClusterSettings.from_extra({"namspace": "x"})
    settings = ClusterSettings.from_extra({"namespace": "ns1", "service_url": "http://{name}.{namespace}.example:80/"})
    assert settings.url_for("svc") == "http://svc.ns1.example:80"
    assert ClusterSettings().url_for("svc") == "http://svc.default.svc.cluster.local:8080"
    with pytest.raises(ManifestError, match="namespace"):
        render(request(), ClusterSettings(namespace="Not_Valid"), OWNER)


def test_schema_rejects_what_the_api_would() -> None:
    body = render(request(), ClusterSettings(), OWNER).body
    broken: list[tuple[str, dict[str, Any]]] = []  # (what the error names, the manifest)
    no_model = copy.deepcopy(body)
    del no_model["spec"]["model"]
    broken.append((r"^invalid InferenceService:\n  spec: .* is not valid under any", no_model))  # model or runtime
    typo = copy.deepcopy(body)
    typo["spec"]["engine"]["runnr"] = typo["spec"]["engine"].pop("runner")
    broken.append(("'runnr' was unexpected", typo))
    label = copy.deepcopy(body)
    label["metadata"]["labels"]["autotuner.run"] = "has space"
    broken.append(("metadata/labels/autotuner.run: 'has space'", label))
    gpu = copy.deepcopy(body)
    gpu["spec"]["engine"]["runner"]["resources"] = {"limits": {"nvidia.com/gpu": "two"}}
    broken.append(("resources/limits/nvidia.com/gpu: 'two'", gpu))
    env = copy.deepcopy(body)
    env["spec"]["engine"]["runner"]["env"] = [{"name": "X"}]
    broken.append(("runner/env/0: ", env))
    for expected, item in broken:
        with pytest.raises(ManifestError) as caught:
            validate(item)
        assert (
            re.search(expected, str(caught.value), re.S) if expected.startswith("^") else expected in str(caught.value)
        )


def test_missing_flags() -> None:
    tuned = (("--max-num-seqs", "8"), ("--enable-chunked-prefill",), ("--x", "a b"))
    assert (
        missing_flags(tuned, ["python3", "-m", "m", "--max-num-seqs", "8", "--enable-chunked-prefill", "--x", "a b"])
        == []
    )
    assert missing_flags(tuned, ["--max-num-seqs", "16", "--x", "a", "b"]) == [
        "--max-num-seqs 8",
        "--enable-chunked-prefill",
        "--x a b",
    ]
    assert missing_flags(tuned, ["bash", "-lc", "python3 -m m --max-num-seqs 8"])[0] == "--max-num-seqs 8"
