"""The tokenizer derived from the GGUF gives exactly the token ids llama.cpp gives, so genai-bench's counts are right.

genai-bench sizes prompts and counts tokens with the tokenizer folder we hand it; the engine counts with its own
tokenizer. Both are asked about the same texts here: a hand-written corpus (English, code, numbers, unicode, emoji,
whitespace runs, special-token text) and a few thousand seeded random strings that mix those character classes
with control characters and bytes that have no token of their own. The engine is the real llama.cpp server
(``autotuner.engines.llamacpp_server``) serving SmolLM2, started and stopped by ``ProcessLauncher`` (its whole
process group, by PID).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autotuner.bench.tokenizer import tokenizer_dir_from_gguf
from autotuner.catalog import BUILTIN_MODELS
from autotuner.engines.runtimes import LLAMACPP
from autotuner.launch import LaunchRequest, ProcessLauncher, wait_until_ready
from autotuner.launch.process import ProcessDeployment, group_alive

pytestmark = pytest.mark.slow

CORPUS = [
    # English prose, contractions, casing
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they've done what we'd said; it's John's, isn't it? DON'T SHOUT'S",
    "Benchmarking LLM inference engines: throughput, time to first token (TTFT) and time per output token.",
    "Hello world! 123",
    "a",
    " ",
    "",
    # code
    "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    '#include <stdio.h>\nint main(void) {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
    "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC LIMIT 10;",
    "const f = (x) => x?.y ?? {a: [1, 2, 3]};  // arrow\n/* block */ let s = `template ${f(1)}`;",
    '<html><body><div class="x">&nbsp;&lt;tag&gt;</div></body></html>',
    '{"key": [1, 2.5e-3, null, true], "nested": {"emoji": "🙂"}}',
    "x=1;y=2;z=x+y*3/4-5%6**7//8|9&10^~11<<12>>13",
    # numbers
    "3.14159 2.71828 1,000,000 -42 +7 1e10 0x1F 0b1010 007 12345678901234567890",
    "Call 555-0123 on 2024-12-31 at 23:59:59.999; pay $1,234.56 or €99,99 (50% off).",
    "٠١٢٣٤٥٦٧٨٩ १२३४ ²³¹ ¼½¾ ①②③ Ⅻ ０１２",
    # unicode
    "Café déjà vu — naïve coöperation, façade, Æsir, smørrebrød, Straße.",
    "Ελληνικά, русский язык, עברית, العربية, हिन्दी, ไทย, ქართული",
    "中文分词测试，日本語のテキスト、カタカナ、한국어 문장입니다。",
    "e\u0301 a\u0308 c\u0327 (combining marks) and precomposed é ä ç",
    "zero\u200bwidth\u200cjoiner\u200dmarks\ufeffBOM\u2060word",
    "\u00a0non-breaking\u2003em space\u3000ideographic\u202fnarrow\u2028line\u2029para\u0085nel",
    "private use \ue000\uf8ff and astral \U00020000 \U0001d400 \U00040000 \U0010ffff",
    # emoji
    "🙂😀👍🏽🇫🇷👨‍👩‍👧‍👦❤️🔥 emoji with skin tones, flags and ZWJ sequences",
    "🧑‍💻 coding 🤖 robots 🎉🎉🎉",
    # whitespace runs
    "word     word\t\tword\n\n\nword\r\nword \n \n x",
    "    leading and trailing spaces    ",
    "\n\n\n",
    "\t\t\t",
    "a" + " " * 100 + "b",
    "tab\tthen  two spaces   three\x0bvertical\x0cform feed",
    # control characters and bytes without a token of their own in SmolLM2's vocabulary
    "\x00\x01\x04\x06\x13\x14\x16\x1d\x1f\x7f\x80\x9f",
    ";\x1d'vl' ;\x04' .\x06.",
    # special tokens as text (llama.cpp's /tokenize parses them)
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><|endoftext|>text<|im_end|>",
    "<repo_name>autotuner<file_sep>tokenizer.py<filename>x<jupyter_code>print(1)<jupyter_output>1",
    "<|im_start",
    "im_end|>",
    "<|im_start|<|im_end|>>",
    "< |im_start| >",
    # long text
    ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40).strip(),
    "\n".join(f"{i:04d}: value={i * 37 % 101} {'odd' if i % 2 else 'even'}" for i in range(200)),
]

POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " ",
    "  \t\n\r\x0b\x0c",
    "'s't're've'm'll'd",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "éèêàçñöüßøåæœ",
    "αβγδεζηθабвгдежз",
    "中文字符日本語ひらがなカタカナ한국어",
    "٠١٢٣٤٥٦٧٨٩१२३²³¹¼½¾①②Ⅻ",
    "🙂😀👍🏽🇫🇷👨‍👩‍👧‍👦❤️",
    "\u00a0\u2000\u2003\u200b\u2028\u2029\u3000\u0085\u1680\u202f\u205f\x1c\x1d\x1e\x1f",
    "\u0301\u0308\u0327",
    "\ue000\U000f0000\U00040000\U0010ffff\U00020000",
    "\x00\x01\x04\x06\x07\x13\x14\x16\x7f\x80\x9f\ufeff\ufffd",
    "<|im_start|><|im_end|><|endoftext|><reponame><|im_<|",
    "    def f(x):\n        return x",
]


def random_corpus(count: int, seed: int = 20240611) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        pieces = [rng.choice(POOLS) for _ in range(rng.randint(1, 40))]
        texts.append("".join("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))) for pool in pieces))
    return texts


@pytest.fixture(scope="module")
def smollm2() -> Path:
    try:
        return BUILTIN_MODELS["smollm2"].path()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def tokenizer_dir(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tokenizer_dir_from_gguf(smollm2, tmp_path_factory.mktemp("tokenizers"))


@pytest.fixture(scope="module")
def engine(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real llama.cpp server; its process group is stopped on the way out, whatever the tests did."""
    state = tmp_path_factory.mktemp("state")
    request = LaunchRequest(
        run_id="tokenizer-test",
        name="engine",
        profile=LLAMACPP,
        model=str(smollm2),
        served_name="smollm2",
        flags={"n-ctx": 2048, "threads": 2},
        env={},
        log_dir=tmp_path_factory.mktemp("logs"),
        python=sys.executable,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOTUNER_STATE_DIR", str(state))  # our engine's record, apart from any other run's
        with ProcessLauncher().start(request) as deployment:  # leaving the block stops the process group
            wait_until_ready(deployment, LLAMACPP, timeout=90)
            yield deployment.url
    assert isinstance(deployment, ProcessDeployment)
    assert not group_alive(deployment.process.pid), "the engine's process group outlived the tests"


def post(url: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a local test server
        return json.load(response)


def engine_ids(url: str, text: str, add_special: bool = False) -> list[int]:
    ids = post(url, "/tokenize", {"content": text, "add_special": add_special})["tokens"]
    assert isinstance(ids, list)
    return ids


def mismatches(url: str, texts: list[str], ours: list[list[int]], add_special: bool = False) -> list[str]:
    found = []
    for text, mine in zip(texts, ours, strict=True):
        theirs = engine_ids(url, text, add_special)
        if theirs != mine:
            found.append(f"{text!r}:\n  engine {theirs}\n  ours   {mine}")
    return found


def test_tokenize_endpoint_is_what_we_think(engine: str) -> None:
    """The reference itself: /tokenize parses special tokens and adds no BOS for SmolLM2."""
    assert engine_ids(engine, "<|im_start|>user\nHi there<|im_end|>") == [1, 4093, 198, 26843, 665, 2]
    assert engine_ids(engine, "Hello", add_special=True) == engine_ids(engine, "Hello")


def test_corpus_ids_are_identical(engine: str, tokenizer_dir: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    ours = [encoding.ids for encoding in tokenizer.encode_batch(CORPUS, add_special_tokens=False)]
    assert mismatches(engine, CORPUS, ours) == []
    with_special = [encoding.ids for encoding in tokenizer.encode_batch(CORPUS, add_special_tokens=True)]
    assert mismatches(engine, CORPUS, with_special, add_special=True) == []
    print(f"{len(CORPUS)} corpus strings, {sum(map(len, ours))} tokens: identical")


def test_random_strings_ids_are_identical(engine: str, tokenizer_dir: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    texts = random_corpus(3000)
    ours = [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]
    found = mismatches(engine, texts, ours)
    assert found == [], f"{len(found)} of {len(texts)} differ; first ones:\n" + "\n".join(found[:5])
    print(f"{len(texts)} random strings, {sum(map(len, ours))} tokens: identical")


def test_decoding_matches_the_engine(engine: str, tokenizer_dir: Path) -> None:
    """genai-bench cuts prompts by decoding token slices: our decode must read ids as llama.cpp does."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    for text in CORPUS + random_corpus(300, seed=7):
        ids = engine_ids(engine, text)
        assert (
            tokenizer.decode(ids, skip_special_tokens=False) == post(engine, "/detokenize", {"tokens": ids})["content"]
        ), repr(text)


def test_autotokenizer_as_genai_bench_loads_it_agrees(engine: str, tokenizer_dir: Path, tmp_path: Path) -> None:
    """The path genai-bench takes (transformers' AutoTokenizer, offline) over the whole corpus, in a subprocess."""
    texts = CORPUS + random_corpus(500, seed=11)
    corpus_file = tmp_path / "texts.json"
    corpus_file.write_text(json.dumps(texts))
    script = textwrap.dedent(
        """
        import json, sys
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
        texts = json.loads(open(sys.argv[2], encoding="utf-8").read())
        print(json.dumps([tokenizer.encode(text, add_special_tokens=False) for text in texts]))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TRANSFORMERS_VERBOSITY": "error"}
    completed = subprocess.run(
        [sys.executable, "-c", script, str(tokenizer_dir), str(corpus_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    ours = json.loads(completed.stdout.strip().splitlines()[-1])
    assert mismatches(engine, texts, ours) == []
