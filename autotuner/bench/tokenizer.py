"""The tokenizer genai-bench counts tokens with: a local Hugging Face tokenizer folder, built offline when needed.

genai-bench shapes every prompt to a scenario's token count (``D(100,100)`` means 100 input tokens) and counts
tokens with ``AutoTokenizer.from_pretrained(--model-tokenizer)``. If its tokenizer disagrees with the engine's, the
prompts are not the size the scenario says and every per-token figure (input throughput, TPOT) is off. With no
model hub here, a GGUF model has no Hugging Face tokenizer next to it, so this module rebuilds one from the GGUF's
own metadata: the vocabulary, merges, token types, special token ids and chat template that llama.cpp itself
tokenizes with, mirrored in a ``tokenizers`` fast tokenizer so both produce the same ids (checked against the real
engine's ``/tokenize`` in ``tests/integration/test_tokenizer_vs_engine.py``). No torch is involved: transformers
can read GGUF tokenizers too (``gguf_file=``), but only with torch installed. The metadata is read by a small
reader here (:func:`read_gguf_metadata`), checked against the ``gguf`` package's reader in the tests.

GGUF key -> Hugging Face file:

- ``tokenizer.ggml.model`` picks the algorithm. Only ``gpt2`` (byte-level BPE, what llama.cpp calls BPE) is
  rebuilt; other models (``llama`` SentencePiece, ``bert``, ``t5``, ``rwkv``, ...) raise
  :class:`UnsupportedTokenizerError` with what to do instead.
- ``tokenizer.ggml.tokens`` -> the BPE vocabulary (token text is already in GPT-2's byte-to-unicode form);
  ``tokenizer.ggml.merges`` -> the BPE merges, in rank order.
- ``tokenizer.ggml.pre`` -> the pre-tokenizer: the same regular expressions llama.cpp splits text with, applied in
  sequence (``Split``, isolated), then the byte-level mapping; it also sets ``ignore_merges`` where llama.cpp does.
- ``tokenizer.ggml.token_type`` -> added tokens: control and unknown tokens become special tokens, user-defined
  tokens plain added tokens; llama.cpp matches both inside text before splitting, and so does ``tokenizers``.
- ``tokenizer.ggml.{bos,eos,unknown,padding}_token_id`` -> ``bos_token`` ... ``pad_token``;
  ``tokenizer.ggml.add_{bos,eos}_token`` -> a post-processor that adds them, as llama.cpp does with
  ``add_special``.
- ``tokenizer.chat_template`` (and named ``tokenizer.chat_template.<name>``) -> ``chat_template``;
  ``<arch>.context_length`` -> ``model_max_length``.
- ``tokenizer.ggml.scores`` are SentencePiece scores, unused by byte-level BPE.

The folder is cached under ``~/.cache/autotuner/tokenizers/<file stem>-<digest>/`` where the digest covers the
GGUF's metadata bytes (not its weights) and the builder version, so a rebuilt or edited GGUF gets a new folder and
an unchanged one is reused. It is written to a temporary folder and renamed into place, so a reader never sees a
half-written tokenizer and concurrent builders do not clash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..launch.base import InfrastructureError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# Bump when the folder this module writes changes for the same GGUF (a new key mapping, a fixed regex): the
# cache key includes it, so old folders are simply no longer used.
BUILDER_VERSION = 2

# What makes a folder a tokenizer AutoTokenizer can load (any one of them).
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
# What this module writes; a cached folder missing any of them is rebuilt.
WRITTEN_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "autotuner_tokenizer.json")


class TokenizerError(InfrastructureError):
    """No tokenizer could be provided for a model; the message says why and what to do.

    An infrastructure error (like an image missing from the machine): the files a spec names are not usable here,
    so the run stops before any trial with this message (exit 5), never as an "internal error"."""


class TokenizerFileNotFound(TokenizerError, FileNotFoundError):
    """A local model or tokenizer path that does not exist (still a ``FileNotFoundError`` for callers)."""


class GGUFError(TokenizerError):
    """The file is not a readable GGUF (wrong magic, unsupported version, truncated or corrupted metadata)."""


class UnsupportedTokenizerError(TokenizerError):
    """A valid GGUF whose tokenizer this module cannot rebuild faithfully (so token counts would be wrong)."""


def default_cache_dir() -> Path:
    """``~/.cache/autotuner/tokenizers``: next to the other derived artefacts (``~/.cache/autotuner/venvs``)."""
    return Path.home() / ".cache" / "autotuner" / "tokenizers"


# --------------------------------------------------------------------------------------------------------------
# GGUF metadata
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GGUFMetadata:
    """The key/value section of a GGUF file, decoded, plus a digest of its raw bytes (the cache key)."""

    values: dict[str, Any]
    sha256: str  # of the header bytes: magic, version, counts and every key/value (not the tensors)
    header_bytes: int
    version: int
    big_endian: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


# GGUF value types (the numbers are the file format's; gguf.GGUFValueType names them).
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(13)
_SCALAR_FORMATS = {
    _UINT8: "B",
    _INT8: "b",
    _UINT16: "H",
    _INT16: "h",
    _UINT32: "I",
    _INT32: "i",
    _FLOAT32: "f",
    _BOOL: "?",
    _UINT64: "Q",
    _INT64: "q",
    _FLOAT64: "d",
}
_GGUF_MAGIC = b"GGUF"


class _Reader:
    """Walks the GGUF header with ``struct`` over a memory map.

    ``gguf.GGUFReader`` reads the same data but builds a numpy view per array element and indexes every tensor:
    2.7 s for SmolLM2's 98k vocabulary and merge strings, against 0.04 s here. The tests check this reader
    against ``GGUFReader`` value by value and these type numbers against ``gguf.GGUFValueType``, so the ``gguf``
    package (0.16 s to import, with numpy) is not needed at run time. ``decode=False`` only skips over the values
    (to find where the header ends, for the cache key) without building them.
    """

    def __init__(self, buffer: mmap.mmap, path: Path, decode: bool) -> None:
        self.buf = buffer
        self.path = path
        self.decode = decode
        self.size = len(buffer)
        self.pos = 0
        self.order = "<"

    def fail(self, what: str) -> GGUFError:
        return GGUFError(f"{self.path}: corrupted or truncated GGUF metadata: {what} (at byte {self.pos})")

    def need(self, count: int, what: str) -> None:
        if count < 0 or self.pos + count > self.size:
            raise self.fail(f"{what} needs {count} bytes, {self.size - self.pos} left in the file")

    def scalar(self, fmt: str, what: str) -> Any:
        item = struct.Struct(self.order + fmt)
        self.need(item.size, what)
        (value,) = item.unpack_from(self.buf, self.pos)
        self.pos += item.size
        return value

    def string(self, what: str) -> str:
        length = self.scalar("Q", what)
        self.need(length, what)
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise self.fail(f"{what} is not UTF-8 ({error})") from None

    def value(self, kind: int, what: str) -> Any:
        if kind == _STRING:
            return self.string(what)
        if kind == _ARRAY:
            return self.array(what)
        fmt = _SCALAR_FORMATS.get(kind)
        if fmt is None:
            raise self.fail(f"{what} has unknown value type {kind}")
        return self.scalar(fmt, what)

    def array(self, what: str) -> list[Any] | None:
        kind = self.scalar("I", f"{what} element type")
        count = self.scalar("Q", f"{what} length")
        if kind == _STRING:
            self.need(8 * count, f"{what} ({count} strings)")
            return self.strings(count, what)
        fmt = _SCALAR_FORMATS.get(kind)
        if fmt is not None:
            item = struct.Struct(self.order + fmt)
            self.need(item.size * count, f"{what} ({count} values)")
            start, self.pos = self.pos, self.pos + item.size * count
            if not self.decode:
                return None
            return list(struct.unpack_from(f"{self.order}{count}{fmt}", self.buf, start))
        if kind == _ARRAY:
            self.need(12 * count, f"{what} ({count} arrays)")
            return [self.array(f"{what}[{index}]") for index in range(count)]
        raise self.fail(f"{what} has unknown element type {kind}")

    def strings(self, count: int, what: str) -> list[Any] | None:
        # The hot loop (tokens and merges: ~100k strings); local names keep it fast.
        buf, size, pos = self.buf, self.size, self.pos
        unpack = struct.Struct(self.order + "Q").unpack_from
        out: list[Any] = []
        append = out.append
        try:
            for _ in range(count):
                (length,) = unpack(buf, pos)
                pos += 8
                end = pos + length
                if end > size:
                    self.pos = pos
                    raise self.fail(f"{what}: a {length}-byte string runs past the end of the file")
                if self.decode:
                    append(buf[pos:end].decode("utf-8"))
                pos = end
        except struct.error:
            self.pos = pos
            raise self.fail(f"{what} is truncated") from None
        except UnicodeDecodeError as error:
            self.pos = pos
            raise self.fail(f"{what}[{len(out)}] is not UTF-8 ({error})") from None
        self.pos = pos
        return out if self.decode else None

    def read(self) -> GGUFMetadata:
        self.need(8, "the GGUF magic and version")
        magic = bytes(self.buf[0:4])
        if magic != _GGUF_MAGIC:
            raise GGUFError(f"{self.path}: not a GGUF file (starts with {magic!r}, expected {_GGUF_MAGIC!r})")
        self.pos = 4
        version = self.scalar("I", "version")
        big_endian = False
        if version & 0xFFFF == 0:  # written on a machine of the other byte order (how gguf.GGUFReader tells)
            big_endian, self.order = True, ">"
            version = struct.unpack(">I", struct.pack("<I", version))[0]
        if version not in (2, 3):
            raise GGUFError(f"{self.path}: GGUF version {version} is not supported (2 and 3 are)")
        self.scalar("Q", "tensor count")
        kv_count = self.scalar("Q", "key/value count")
        self.need(12 * kv_count, f"{kv_count} key/value pairs")
        values: dict[str, Any] = {}
        for index in range(kv_count):
            key = self.string(f"key #{index}")
            kind = self.scalar("I", f"type of {key!r}")
            value = self.value(kind, repr(key))
            if self.decode:
                values[key] = value
        digest = hashlib.sha256(self.buf[: self.pos]).hexdigest()
        return GGUFMetadata(values, digest, self.pos, version, big_endian)


def read_gguf_metadata(path: str | os.PathLike[str], decode: bool = True) -> GGUFMetadata:
    """Read a GGUF file's metadata (key/values only, no tensors), raising :class:`GGUFError` on a bad file.

    With ``decode=False`` only the digest and size are computed (values is empty): the cache check.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_size == 0:
                raise GGUFError(f"{path}: empty file, not a GGUF")
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return _Reader(buffer, path, decode).read()
    except FileNotFoundError:
        raise TokenizerFileNotFound(f"GGUF file not found: {path}") from None
    except IsADirectoryError:
        raise GGUFError(f"{path}: is a directory, not a GGUF file") from None


# --------------------------------------------------------------------------------------------------------------
# llama.cpp's BPE pre-tokenizers (src/llama-vocab.cpp, llm_tokenizer_bpe), by tokenizer.ggml.pre
# --------------------------------------------------------------------------------------------------------------

# The expressions are llama.cpp's own spellings (its "adapted" forms without (?i:...)), which the Oniguruma engine
# of `tokenizers` accepts unchanged; llama.cpp applies each in turn to the pieces the previous one produced and
# keeps the text between matches, which is `Split(behavior="isolated")` in a `Sequence`.
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_LLAMA3 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_QWEN2 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_QWEN35 = (
    _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GPT4O = (
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+" + _CONTRACTIONS + "?"
    r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*" + _CONTRACTIONS + "?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_TEKKEN = (
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+"
    r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_PORO = r" ?[^(\s|.,!?…。，、।۔،)]+"
_CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"  # deepseek-coder's "[一-龥ࠀ-一가-퟿]+"


@dataclass(frozen=True)
class _Pre:
    regexes: tuple[str, ...]
    ignore_merges: bool = False  # a word that is itself a token is not merged (llama3 family)
    add_bos: bool | None = None  # llama.cpp's default when the GGUF has no tokenizer.ggml.add_bos_token
    clean_spaces: bool = True  # clean_up_tokenization_spaces (decoding only)
    no_bos: bool = False  # llama.cpp clears the default BOS id (chatglm)


def _family(names: str, pre: _Pre) -> dict[str, _Pre]:
    return dict.fromkeys(names.split(), pre)


# Families llama.cpp maps each tokenizer.ggml.pre to. Pre types whose llama.cpp split is custom C++ code rather
# than regular expressions (kimi-k2, afmoe, superbpe, gemma4, whitespace, ...) are deliberately absent.
PRE_TOKENIZERS: dict[str, _Pre] = {
    "default": _Pre((r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]")),
    **_family(
        "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2",
        _Pre((_LLAMA3,), ignore_merges=True, add_bos=True),
    ),
    **_family("dbrx smaug-bpe", _Pre((_LLAMA3,))),
    **_family("glm4 chatglm-bpe", _Pre((_LLAMA3,), no_bos=True)),
    "deepseek-coder": _Pre(("[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", _CJK, r"\p{N}"), clean_spaces=False),
    "falcon": _Pre((r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, r"[0-9][0-9][0-9]")),
    **_family("starcoder refact codeshell exaone minerva-7b mellum2", _Pre((r"\p{N}", _GPT2))),
    **_family("smollm command-r", _Pre((r"\p{N}", _GPT2), clean_spaces=False)),
    **_family("gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum", _Pre((_GPT2,))),
    **_family("mpt olmo jais exaone4", _Pre((_GPT2,))),
    **_family("trillion granite-docling", _Pre((_GPT2,), clean_spaces=False)),
    **_family("stablelm2 megrez", _Pre((_QWEN2,))),
    **_family("qwen2 deepseek-r1-qwen kormo f2llmv2 hunyuan solar-open", _Pre((_QWEN2,), clean_spaces=False)),
    "qwen35": _Pre((_QWEN35,), clean_spaces=False),
    "bloom": _Pre((_PORO,)),
    "gpt3-finnish": _Pre((_PORO,)),
    "poro-chat": _Pre((_PORO,), clean_spaces=False),
    "viking": _Pre((_PORO, r"\p{N}"), clean_spaces=False),
    "tekken": _Pre((_TEKKEN,), ignore_merges=True, add_bos=True, clean_spaces=False),
    **_family("gpt-4o llama4 kanana2 talkie minimax-m2", _Pre((_GPT4O,), clean_spaces=False)),
}

# Token texts llama.cpp turns into control tokens even when the GGUF marks them normal (end-of-turn, end-of-
# generation and fill-in-the-middle markers found by name in llama_vocab::impl::load); control tokens are matched
# inside text, so they must be special here too.
_CONTROL_BY_NAME = frozenset(
    """<|eot_id|> <|im_end|> <|end|> <end_of_turn> <|endoftext|> <|end_of_text|> <EOT> _<EOT> [EOT] [EOS]
    <｜end▁of▁sentence｜> <end_of_utterance> <|eom_id|> <|return|> <|call|> <|flush|> <|calls|> </s> <eos> <turn|>
    <|tool_response> <|fim_prefix|> <fim-prefix> <fim_prefix> <｜fim▁begin｜> <PRE> ▁<PRE> <|code_prefix|>
    <|prefix|> <|fim_suffix|> <fim-suffix> <fim_suffix> <｜fim▁hole｜> <SUF> ▁<SUF> <|code_suffix|> <|suffix|>
    <|fim_middle|> <fim-middle> <fim_middle> <｜fim▁end｜> <MID> ▁<MID> <|code_middle|> <|middle|> <|fim_pad|>
    <fim-pad> <fim_pad> <PAD> [PAD] <|fim_repo|> <|repo_name|> <fim-repo> <REPO> <reponame> <|file_sep|>""".split()
)

_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6  # gguf.TokenType

_NOT_SUPPORTED_HINT = (
    "give the benchmark a Hugging Face tokenizer folder instead (the spec's tokenizer setting, or the original "
    "model's Hugging Face id if its files are in the Hugging Face cache)"
)


# --------------------------------------------------------------------------------------------------------------
# Building the tokenizer
# --------------------------------------------------------------------------------------------------------------


@dataclass
class BuiltTokenizer:
    """A tokenizer rebuilt from GGUF metadata, ready to be written as a Hugging Face folder."""

    tokenizer: Tokenizer
    config: dict[str, Any]  # tokenizer_config.json
    special_tokens_map: dict[str, Any]  # special_tokens_map.json
    provenance: dict[str, Any] = field(default_factory=dict)  # autotuner_tokenizer.json: where it came from

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(folder / "tokenizer.json"))
        for name, content in (
            ("tokenizer_config.json", self.config),
            ("special_tokens_map.json", self.special_tokens_map),
            ("autotuner_tokenizer.json", self.provenance),
        ):
            (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _require(metadata: GGUFMetadata, key: str, kind: type, source: Path) -> Any:
    value = metadata.get(key)
    if value is None:
        raise UnsupportedTokenizerError(
            f"{source}: the GGUF has no {key!r}, so it carries no usable tokenizer; {_NOT_SUPPORTED_HINT}"
        )
    if not isinstance(value, kind):
        raise GGUFError(f"{source}: {key!r} should be a {kind.__name__}, found {type(value).__name__}")
    return value


def _optional_id(metadata: GGUFMetadata, key: str, default: int | None, n_tokens: int) -> int | None:
    """A special token id as llama.cpp settles it: the GGUF's value when in range, else the default."""
    value = metadata.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n_tokens:
        return value
    return default if default is not None and 0 <= default < n_tokens else None


def _flag(metadata: GGUFMetadata, key: str, default: bool) -> bool:
    value = metadata.get(key)
    return value if isinstance(value, bool) else default


def _chat_template(metadata: GGUFMetadata) -> str | list[dict[str, str]] | None:
    """The default template, or Hugging Face's list form when the GGUF also names others (tool_use, rag, ...)."""
    default = metadata.get("tokenizer.chat_template")
    names = metadata.get("tokenizer.chat_templates")
    named = []
    if isinstance(names, list):
        for name in names:
            template = metadata.get(f"tokenizer.chat_template.{name}")
            if isinstance(name, str) and name != "default" and isinstance(template, str):
                named.append({"name": name, "template": template})
    if not named:
        return default if isinstance(default, str) else None
    if isinstance(default, str):
        named.insert(0, {"name": "default", "template": default})
    return named


def build_tokenizer(metadata: GGUFMetadata, source: Path) -> BuiltTokenizer:
    """Mirror llama.cpp's tokenizer for ``metadata`` (read from ``source``) as a ``tokenizers`` fast tokenizer.

    Raises :class:`UnsupportedTokenizerError` for tokenizer models and pre-tokenizers that are not mirrored, rather
    than guessing: a near-miss tokenizer would silently skew every token count.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    model = _require(metadata, "tokenizer.ggml.model", str, source)
    if model != "gpt2":
        kind = {"llama": "SentencePiece (llama)", "bert": "WordPiece (bert)", "t5": "Unigram (t5)"}.get(model, model)
        raise UnsupportedTokenizerError(
            f"{source}: tokenizer.ggml.model is {model!r} ({kind}); only 'gpt2' (byte-level BPE) tokenizers can be "
            f"rebuilt from GGUF metadata so far; {_NOT_SUPPORTED_HINT}"
        )
    pre_name = metadata.get("tokenizer.ggml.pre") or "default"  # llama.cpp's fallback, with a loud warning
    if not isinstance(pre_name, str) or pre_name not in PRE_TOKENIZERS:
        raise UnsupportedTokenizerError(
            f"{source}: pre-tokenizer tokenizer.ggml.pre={pre_name!r} is not mirrored (known: "
            f"{', '.join(sorted(PRE_TOKENIZERS))}); {_NOT_SUPPORTED_HINT}"
        )
    pre = PRE_TOKENIZERS[pre_name]
    if _flag(metadata, "tokenizer.ggml.add_sep_token", False):
        raise UnsupportedTokenizerError(
            f"{source}: add_sep_token (an embedding model's BERT-style framing) is not mirrored; {_NOT_SUPPORTED_HINT}"
        )

    tokens: list[str] = list(_require(metadata, "tokenizer.ggml.tokens", list, source))
    n_tokens = len(tokens)
    if n_tokens == 0:
        raise GGUFError(f"{source}: tokenizer.ggml.tokens is empty")
    types = metadata.get("tokenizer.ggml.token_type")
    if not isinstance(types, list) or len(types) < n_tokens:
        types = [_NORMAL] * n_tokens  # llama.cpp: every token is normal without the array
    merges_raw: list[str] = list(_require(metadata, "tokenizer.ggml.merges", list, source))

    vocab: dict[str, int] = {}
    for index, text in enumerate(tokens):
        if not isinstance(text, str):
            raise GGUFError(f"{source}: tokenizer.ggml.tokens[{index}] is not a string")
        text = text or f"[EMPTY_{index}]"  # llama.cpp's name for an empty token
        tokens[index] = text
        if text in vocab:
            raise GGUFError(f"{source}: duplicate token {text!r} (ids {vocab[text]} and {index})")
        vocab[text] = index

    merges: list[tuple[str, str]] = []
    for rank, merge in enumerate(merges_raw):
        # llama.cpp splits at the first space after the first character (a merge part may itself be a space).
        cut = merge.find(" ", 1) if isinstance(merge, str) else -1
        if cut < 0:
            raise GGUFError(f"{source}: tokenizer.ggml.merges[{rank}] is not 'left right': {merge!r}")
        left, right = merge[:cut], merge[cut + 1 :]
        # `tokenizers` cannot hold a merge whose parts or result are not tokens (llama.cpp would apply it, then
        # fall back to bytes); such merges are dropped and counted in the provenance record (SmolLM2 has none).
        if left in vocab and right in vocab and left + right in vocab:
            merges.append((left, right))

    bpe = models.BPE(
        vocab, merges, unk_token=None, fuse_unk=False, byte_fallback=False, ignore_merges=pre.ignore_merges
    )
    tokenizer = Tokenizer(bpe)
    splits: list[pre_tokenizers.PreTokenizer] = [
        pre_tokenizers.Split(Regex(regex), behavior="isolated") for regex in pre.regexes
    ]
    splits.append(pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False))
    # A byte with no token of its own (SmolLM2 has none for 0x04, 0x1d, ...) stays a symbol in llama.cpp's BPE:
    # no merge crosses it and it is dropped at the end. `tokenizers` drops it before merging instead, which
    # would let its neighbours merge (";\x1d'" -> ";'"); isolating it in its own piece keeps them apart.
    tokenless = sorted(char for char in pre_tokenizers.ByteLevel.alphabet() if char not in vocab)
    if tokenless:
        pattern = "[" + "".join(f"\\x{{{ord(char):04X}}}" for char in tokenless) + "]"
        splits.append(pre_tokenizers.Split(Regex(pattern), behavior="isolated"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(splits)
    tokenizer.decoder = decoders.ByteLevel()

    # Special ids as llama.cpp settles them: BPE defaults (11 for BOS/EOS), then the GGUF's values.
    bos = _optional_id(metadata, "tokenizer.ggml.bos_token_id", None if pre.no_bos else 11, n_tokens)
    eos = _optional_id(metadata, "tokenizer.ggml.eos_token_id", 11, n_tokens)
    unk = _optional_id(metadata, "tokenizer.ggml.unknown_token_id", None, n_tokens)
    pad = _optional_id(metadata, "tokenizer.ggml.padding_token_id", None, n_tokens)
    add_bos = _flag(metadata, "tokenizer.ggml.add_bos_token", bool(pre.add_bos)) and bos is not None
    add_eos = _flag(metadata, "tokenizer.ggml.add_eos_token", False) and eos is not None

    special: list[str] = []
    user_defined: list[str] = []
    for index, text in enumerate(tokens):
        kind = types[index]
        if kind in (_CONTROL, _UNKNOWN) or text in _CONTROL_BY_NAME:
            special.append(text)
        elif kind == _USER_DEFINED:
            user_defined.append(text)
    if special:
        tokenizer.add_special_tokens([AddedToken(text, special=True, normalized=False) for text in special])
    if user_defined:
        tokenizer.add_tokens([AddedToken(text, special=False, normalized=False) for text in user_defined])

    # llama.cpp adds BOS/EOS around the text when asked for special tokens (add_special); so does this.
    byte_level = processors.ByteLevel(trim_offsets=False)
    bos_text = tokens[bos] if add_bos and bos is not None else None
    eos_text = tokens[eos] if add_eos and eos is not None else None
    if bos_text or eos_text:

        def framed(sequence: str, type_id: int) -> list[str]:
            pieces = [f"{bos_text}:{type_id}"] if bos_text else []
            pieces.append(f"${sequence}:{type_id}")
            return pieces + ([f"{eos_text}:{type_id}"] if eos_text else [])

        template = processors.TemplateProcessing(
            single=framed("A", 0),
            pair=framed("A", 0) + framed("B", 1),
            special_tokens=[(text, vocab[text]) for text in dict.fromkeys((bos_text, eos_text)) if text],
        )
        tokenizer.post_processor = processors.Sequence([byte_level, template])
    else:
        tokenizer.post_processor = byte_level

    names = {"bos_token": bos, "eos_token": eos, "unk_token": unk, "pad_token": pad}
    special_map: dict[str, Any] = {name: tokens[i] for name, i in names.items() if i is not None}
    named = set(special_map.values())
    extra = [text for text in special if text not in named]
    if extra:
        special_map["additional_special_tokens"] = extra

    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **{name: text for name, text in special_map.items() if name != "additional_special_tokens"},
        "add_bos_token": add_bos,
        "add_eos_token": add_eos,
        "clean_up_tokenization_spaces": pre.clean_spaces,
    }
    architecture = metadata.get("general.architecture")
    context = metadata.get(f"{architecture}.context_length") if isinstance(architecture, str) else None
    if isinstance(context, int) and context > 0:
        config["model_max_length"] = context
    chat_template = _chat_template(metadata)
    if chat_template is not None:
        config["chat_template"] = chat_template

    provenance = {
        "builder_version": BUILDER_VERSION,
        "source": str(source),
        "gguf_metadata_sha256": metadata.sha256,
        "general.name": metadata.get("general.name"),
        "tokenizer.ggml.model": model,
        "tokenizer.ggml.pre": pre_name,
        "vocab_size": n_tokens,
        "merges": len(merges),
        "merges_dropped": len(merges_raw) - len(merges),
        "bytes_without_token": len(tokenless),
    }
    return BuiltTokenizer(tokenizer, config, special_map, provenance)


# --------------------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------------------

_STALE_TEMP_SECONDS = 3600  # a temporary folder this old belongs to a builder that died


def _cache_key(gguf: Path, metadata: GGUFMetadata) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", gguf.stem)[:80] or "model"
    digest = hashlib.sha256(f"builder-v{BUILDER_VERSION}:{metadata.sha256}".encode()).hexdigest()[:16]
    return f"{stem}-{digest}"


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in WRITTEN_FILES)


def _sweep_stale_temps(root: Path, key: str) -> None:
    now = time.time()
    for leftover in root.glob(f".{key}.*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)


def tokenizer_dir_from_gguf(gguf: Path, cache_dir: Path | None = None) -> Path:
    """A Hugging Face tokenizer folder equivalent to ``gguf``'s llama.cpp tokenizer, built once and then reused.

    The folder (``tokenizer.json``, ``tokenizer_config.json`` with the chat template, ``special_tokens_map.json``,
    and ``autotuner_tokenizer.json`` recording its source) loads with ``AutoTokenizer.from_pretrained`` offline.
    A cache hit reads only the GGUF's metadata section to check the key. Raises :class:`GGUFError` for a file
    that is not a readable GGUF and :class:`UnsupportedTokenizerError` for a tokenizer that is not mirrored.
    """
    gguf = Path(gguf).expanduser().resolve()
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    key = _cache_key(gguf, read_gguf_metadata(gguf, decode=False))
    target = root / key
    if _complete(target):
        return target

    started = time.perf_counter()
    metadata = read_gguf_metadata(gguf)
    built = build_tokenizer(metadata, gguf)
    root.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temps(root, key)
    temporary = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        temporary.chmod(0o755)  # mkdtemp's 0700 would hide the tokenizer from other users (a container's, say)
        built.provenance["build_seconds"] = round(time.perf_counter() - started, 3)
        built.save(temporary)
        if target.exists() and not _complete(target):  # a folder someone emptied or damaged: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(temporary, target)
        except OSError:
            if not _complete(target):  # not a concurrent builder's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


# --------------------------------------------------------------------------------------------------------------
# Which tokenizer genai-bench gets
# --------------------------------------------------------------------------------------------------------------


def _is_tokenizer_dir(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_file() for name in HF_TOKENIZER_FILES)


def _looks_like_path(reference: str) -> bool:
    """The spec's convention: paths start with ``/``, ``./``, ``../`` or ``~``; a ``.gguf`` name is a file."""
    return reference.startswith(("/", "./", "../", "~")) or reference.lower().endswith(".gguf")


def _from_local(path: Path, what: str, derive: Callable[[Path], Path]) -> str:
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return str(derive(path))
        raise TokenizerError(f"{what} {path} is a file but not a .gguf; give a tokenizer folder or a GGUF file")
    if _is_tokenizer_dir(path):
        return str(path)
    if path.is_dir():
        ggufs = sorted(p for p in path.glob("*.gguf") if p.is_file())
        if len(ggufs) == 1:
            return str(derive(ggufs[0]))
        found = f"{len(ggufs)} .gguf files" if ggufs else "no .gguf file"
        raise TokenizerError(
            f"{what} {path} has no tokenizer files ({', '.join(HF_TOKENIZER_FILES)}) and {found} to derive one "
            f"from; name the tokenizer folder or the GGUF file explicitly"
        )
    raise TokenizerFileNotFound(f"{what} {path} does not exist")


def resolve_tokenizer(model_reference: str, explicit: str | None, cache_dir: Path | None = None) -> str:
    """What to pass to genai-bench's ``--model-tokenizer`` for a model.

    In order:

    1. ``explicit`` (the spec's tokenizer setting), when given, wins: a local folder is used as is (it must hold
       tokenizer files), a ``.gguf`` file is derived from, and anything else is taken as a Hugging Face id.
    2. ``model_reference`` as the engine gets it: ``builtin:<name>`` and ``*.gguf`` files -> the folder derived
       from the GGUF (:func:`tokenizer_dir_from_gguf`, cached); a local Hugging Face model folder with tokenizer
       files -> itself; a local folder holding exactly one ``.gguf`` and no tokenizer files -> derived from it.
    3. Otherwise a Hugging Face id, returned unchanged: genai-bench loads it from the Hugging Face cache
       (``HF_HUB_OFFLINE=1``) or the hub.

    Local references follow the spec's convention (``/``, ``./``, ``../``, ``~`` or a ``.gguf`` suffix) or simply
    exist on disk; a missing local path raises ``FileNotFoundError`` rather than being mistaken for a hub id.
    Returns a string because that is what the command line gets. ``cache_dir`` is passed to
    :func:`tokenizer_dir_from_gguf`.
    """

    def derive(gguf: Path) -> Path:
        return tokenizer_dir_from_gguf(gguf, cache_dir)

    for reference, what in ((explicit, "tokenizer"), (model_reference, "model")):
        if reference is None or not reference.strip():
            continue
        reference = reference.strip()
        if reference.startswith("builtin:"):
            from ..catalog import BUILTIN_MODELS

            name = reference.removeprefix("builtin:")
            if name not in BUILTIN_MODELS:
                raise TokenizerError(f"unknown builtin model {name!r} (known: {', '.join(sorted(BUILTIN_MODELS))})")
            return str(derive(BUILTIN_MODELS[name].path()))
        path = Path(reference).expanduser()
        if _looks_like_path(reference) or path.exists():
            return _from_local(path.resolve(), what, derive)
        return reference  # a Hugging Face id
    raise TokenizerError("no model reference to find a tokenizer for")


__all__ = [
    "BUILDER_VERSION",
    "BuiltTokenizer",
    "GGUFError",
    "GGUFMetadata",
    "PRE_TOKENIZERS",
    "TokenizerError",
    "UnsupportedTokenizerError",
    "build_tokenizer",
    "default_cache_dir",
    "read_gguf_metadata",
    "resolve_tokenizer",
    "tokenizer_dir_from_gguf",
]
