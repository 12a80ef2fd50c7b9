"""Where the embedded model lives and how it is checked when it is loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from predictflow.schema import schema_fingerprint

ARTIFACT_DIR: Final = Path(__file__).resolve().parent / "artifacts"
MODEL_FILE: Final = "income-model.onnx"
METADATA_FILE: Final = "income-model.json"
INPUT_NAME: Final = "features"
OUTPUT_NAME: Final = "probabilities"


class ModelArtifactError(RuntimeError):
    """The artifact is missing, or was trained on another schema than this code's."""


@dataclass(frozen=True, slots=True)
class ModelArtifact:
    model_bytes: bytes
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])


def load_artifact(directory: Path = ARTIFACT_DIR) -> ModelArtifact:
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text())
        model_bytes = (directory / MODEL_FILE).read_bytes()
    except FileNotFoundError as error:
        raise ModelArtifactError(f"model artifact not found: {error.filename}") from error
    if metadata.get("schema_fingerprint") != schema_fingerprint():
        raise ModelArtifactError(
            f"model {metadata.get('model_version')} was trained on another record schema "
            "(its schema fingerprint differs): retrain with `make model`"
        )
    return ModelArtifact(model_bytes, metadata)
