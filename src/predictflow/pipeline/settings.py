"""Every runtime setting, read from the environment once and validated at cold start.

template.yaml sets these variables for all four functions (Globals), the local stack sets
them from the same template, and nothing else reads os.environ: a missing or malformed
setting stops the function at import with a message naming each variable at fault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, cast

Backend = Literal["embedded", "sagemaker", "aml"]
BACKENDS: Final[tuple[Backend, ...]] = ("embedded", "sagemaker", "aml")
MAX_CHUNKS: Final = 1000
"""The inline Map adds ~20 history events per chunk; 1,000 chunks stay well inside the
25,000-event limit of an execution, retries included."""


class SettingsError(RuntimeError):
    """The environment does not describe a usable deployment."""


@dataclass(frozen=True, slots=True)
class Settings:
    output_bucket: str
    predictions_prefix: str
    work_prefix: str
    dead_letter_table: str
    ledger_table: str
    max_file_bytes: int
    chunk_bytes: int
    predictor_backend: Backend
    model_bucket: str = ""
    """The model store (see `bundle.store`); empty: serve the packaged default bundle only."""
    replay_prefix: str = ""
    """Where `predictflow replay` writes its files; their lines carry the origin of each record."""
    sagemaker_endpoint_name: str = ""
    aml_model_id: str = ""
    aml_predict_endpoint: str = ""
    active_model_cache_seconds: int = 0
    """How long a container may reuse the active-model pointer it read (0: read it for every
    file). A few seconds take an S3 GET off nearly every small file; `model activate` then
    reaches new files within that many seconds, and a file still keeps one version throughout."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        problems: list[str] = []

        def text(name: str, *, required: bool = True) -> str:
            value = environ.get(name, "").strip()
            if required and not value:
                problems.append(f"{name} is not set")
            return value

        def prefix(name: str) -> str:
            value = text(name)
            if value and not value.endswith("/"):
                problems.append(f"{name} must end with '/' (got {value!r})")
            return value

        def whole_number(name: str) -> int:
            value = text(name, required=False) or "0"
            if not value.isdigit():
                problems.append(f"{name} must be a whole number of 0 or more (got {value!r})")
                return 0
            return int(value)

        def positive_int(name: str) -> int:
            value = text(name)
            try:
                number = int(value)
            except ValueError:
                if value:
                    problems.append(f"{name} must be a whole number (got {value!r})")
                return 0
            if number <= 0:
                problems.append(f"{name} must be positive (got {number})")
            return number

        backend = text("PREDICTFLOW_PREDICTOR_BACKEND")
        if backend and backend not in BACKENDS:
            problems.append(
                f"PREDICTFLOW_PREDICTOR_BACKEND must be one of {', '.join(BACKENDS)} (got {backend!r})"
            )
        settings = cls(
            output_bucket=text("PREDICTFLOW_OUTPUT_BUCKET"),
            predictions_prefix=prefix("PREDICTFLOW_PREDICTIONS_PREFIX"),
            work_prefix=prefix("PREDICTFLOW_WORK_PREFIX"),
            dead_letter_table=text("PREDICTFLOW_DEAD_LETTER_TABLE"),
            ledger_table=text("PREDICTFLOW_LEDGER_TABLE"),
            max_file_bytes=positive_int("PREDICTFLOW_MAX_FILE_BYTES"),
            chunk_bytes=positive_int("PREDICTFLOW_CHUNK_BYTES"),
            predictor_backend=cast(Backend, backend),
            model_bucket=text("PREDICTFLOW_MODEL_BUCKET", required=False),
            replay_prefix=text("PREDICTFLOW_REPLAY_PREFIX", required=False),
            sagemaker_endpoint_name=text(
                "PREDICTFLOW_SAGEMAKER_ENDPOINT_NAME", required=backend == "sagemaker"
            ),
            aml_model_id=text("PREDICTFLOW_AML_MODEL_ID", required=backend == "aml"),
            aml_predict_endpoint=text("PREDICTFLOW_AML_PREDICT_ENDPOINT", required=backend == "aml"),
            active_model_cache_seconds=whole_number("PREDICTFLOW_ACTIVE_MODEL_CACHE_SECONDS"),
        )
        if settings.chunk_bytes and settings.max_file_bytes > settings.chunk_bytes * MAX_CHUNKS:
            problems.append(
                f"PREDICTFLOW_MAX_FILE_BYTES ({settings.max_file_bytes}) needs more than "
                f"{MAX_CHUNKS} chunks of PREDICTFLOW_CHUNK_BYTES ({settings.chunk_bytes})"
            )
        if problems:
            raise SettingsError("invalid predictflow settings: " + "; ".join(problems))
        return settings
