"""Where bundles are read from: a folder (the packaged default, or `--model DIR`) or the stack's
model store in S3. `BundleSource.load` holds the contract (format version, model digest, the
schema's own consistency); a source only says how to read a file, as powertools' parameter
providers implement `_get` under one `get`."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Final

from predictflow.bundle.exceptions import BundleError
from predictflow.bundle.format import BUNDLE_FILE, BundleSpec
from predictflow.bundle.schema import CompiledSchema
from predictflow.forest.runtime import platform_key

DEFAULT_BUNDLE_DIR: Final = Path(__file__).resolve().parent.parent / "bundles" / "adult-income"
"""The bundle the pipeline serves when none has been deployed: the UCI Adult income model."""


@dataclass(frozen=True, eq=False)
class Bundle:
    """A loaded bundle: its description, its compiled schema and its model's bytes."""

    spec: BundleSpec
    model_bytes: bytes | None = field(repr=False)
    """The ONNX model; None when the bundle names an endpoint instead."""
    location: str = ""
    forest_library: bytes | None = field(default=None, repr=False)
    """The compiled forest for this machine, its sha256 checked; None: ONNX Runtime scores it."""
    forest_note: str = ""
    """Why there is no `forest_library`, in words for the log."""

    @property
    def model_version(self) -> str:
        return self.spec.model_version

    @cached_property
    def schema(self) -> CompiledSchema:
        return CompiledSchema(self.spec)


class BundleSource(ABC):
    """Reads one bundle's files by name; `load` checks what it read."""

    @abstractmethod
    def _read(self, name: str) -> bytes:
        """The bytes of one file of the bundle. Raises FileNotFoundError when it is absent."""

    @property
    @abstractmethod
    def location(self) -> str: ...

    def load(self, *, with_model: bool = True) -> Bundle:
        try:
            spec = BundleSpec.from_json(self._read(BUNDLE_FILE))
        except FileNotFoundError as error:
            raise BundleError(f"{self.location} is not a bundle: it has no {BUNDLE_FILE}") from error
        model_bytes = None
        if spec.model.kind == "onnx" and with_model:
            try:
                model_bytes = self._read(spec.model.path)
            except FileNotFoundError as error:
                raise BundleError(f"{self.location}: the model file {spec.model.path} is missing") from error
            digest = hashlib.sha256(model_bytes).hexdigest()
            if digest != spec.model.sha256:
                raise BundleError(
                    f"{self.location}: {spec.model.path} does not match the bundle file's sha256 "
                    f"(the file changed after the bundle was written): rebuild or re-import the bundle"
                )
        library, note = self._forest(spec) if model_bytes is not None else (None, "")
        return Bundle(spec, model_bytes, self.location, library, note)

    def _forest(self, spec: BundleSpec) -> tuple[bytes | None, str]:
        """This machine's compiled forest, or why ONNX Runtime serves the bundle instead. A
        library that is absent or altered is not an error: the bundle is still whole without it."""
        if spec.forest is None:
            return None, "the bundle has no compiled forest"
        key = platform_key()
        ref = spec.forest.libraries.get(key)
        if ref is None:
            return None, f"the bundle has no compiled forest for {key}"
        try:
            library = self._read(ref.path)
        except FileNotFoundError:
            return None, f"{ref.path} is missing from {self.location}"
        if hashlib.sha256(library).hexdigest() != ref.sha256:
            return None, f"{ref.path} does not match its sha256 in the bundle file"
        return library, ""


class DirectorySource(BundleSource):
    def __init__(self, path: Path) -> None:
        self._path = Path(path)

    @property
    def location(self) -> str:
        return str(self._path)

    def _read(self, name: str) -> bytes:
        if not self._path.is_dir():
            raise BundleError(f"{self._path} is not a folder: a bundle is a folder holding {BUNDLE_FILE}")
        return (self._path / name).read_bytes()


class S3Source(BundleSource):
    """One version in the model store: `s3://bucket/<prefix><model_version>/<file>`."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix

    @property
    def location(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}"

    def _read(self, name: str) -> bytes:
        try:
            return bytes(self._s3.get_object(Bucket=self._bucket, Key=self._prefix + name)["Body"].read())
        except self._s3.exceptions.NoSuchKey as error:
            raise FileNotFoundError(name) from error


def load_bundle(path: Path | str) -> Bundle:
    return DirectorySource(Path(path)).load()


@cache
def default_bundle() -> Bundle:
    """The packaged default bundle, read once per process (handlers, CLI and tests share it)."""
    return load_bundle(DEFAULT_BUNDLE_DIR)
