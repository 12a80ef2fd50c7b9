"""The stack's model store: deployed bundles in S3, and which one is active.

    s3://<ModelBucket>/bundles/<model_version>/bundle.json, model.onnx, report/...
    s3://<ModelBucket>/active.json        {"model_version": ..., "activated_at": ...}

A version's files are written before `active.json` names it, and a version is never rewritten
(its name is a hash of its content), so a reader that follows the pointer always finds a whole
bundle. Fetch reads the pointer once per execution and pins the version for every step of that
file, so a deploy in the middle of a file never mixes two models in it. With no pointer, the
pipeline serves the default bundle packaged in its layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from predictflow.bundle.format import BUNDLE_FILE, BundleSpec
from predictflow.bundle.sources import Bundle, S3Source

BUNDLES_PREFIX: Final = "bundles/"
ACTIVE_KEY: Final = "active.json"


@dataclass(frozen=True)
class StoredVersion:
    """A deployed version: its description and when its files were uploaded."""

    spec: BundleSpec
    uploaded_at: datetime


@dataclass(frozen=True)
class Pointer:
    """What `active.json` says."""

    model_version: str
    activated_at: str = ""


class ModelStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def active_version(self) -> str | None:
        """The version the pointer names, or None when nothing has been deployed."""
        pointer = self.pointer()
        return pointer.model_version if pointer else None

    def pointer(self) -> Pointer | None:
        """The active pointer with when it was written, or None when nothing has been deployed."""
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=ACTIVE_KEY)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        data = json.loads(body)
        return Pointer(str(data["model_version"]), str(data.get("activated_at", "")))

    def exists(self, version: str) -> bool:
        """Whether a whole version is stored (its bundle file, written last, is there)."""
        try:
            self._s3.head_object(Bucket=self.bucket, Key=f"{BUNDLES_PREFIX}{version}/{BUNDLE_FILE}")
        except self._s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def source(self, version: str) -> S3Source:
        return S3Source(self._s3, self.bucket, f"{BUNDLES_PREFIX}{version}/")

    def load(self, version: str, *, with_model: bool = True) -> Bundle:
        return self.source(version).load(with_model=with_model)

    def versions(self) -> list[BundleSpec]:
        """Every deployed version's description, oldest first by upload."""
        return [stored.spec for stored in self.stored()]

    def version_names(self) -> list[str]:
        """Every deployed version's name, from one listing (no bundle file is read)."""
        return [key.split("/")[1] for _, key in self._bundle_files()]

    def stored(self) -> list[StoredVersion]:
        """Every deployed version with its upload time, oldest first."""
        found = []
        for uploaded_at, key in self._bundle_files():
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            found.append(StoredVersion(BundleSpec.from_json(body), uploaded_at))
        return found

    def _bundle_files(self) -> list[tuple[datetime, str]]:
        paginator = self._s3.get_paginator("list_objects_v2")
        found: list[tuple[datetime, str]] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=BUNDLES_PREFIX):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/" + BUNDLE_FILE) and item["Key"].count("/") == 2:
                    found.append((item["LastModified"], item["Key"]))
        return sorted(found)

    def upload(self, directory: Path, spec: BundleSpec) -> None:
        """Every file of a bundle folder under its version, the bundle file last, so that a
        listed version is a whole one."""
        prefix = f"{BUNDLES_PREFIX}{spec.model_version}/"
        files = sorted(path for path in directory.rglob("*") if path.is_file() and path.name != BUNDLE_FILE)
        for path in files:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=prefix + path.relative_to(directory).as_posix(),
                Body=path.read_bytes(),
            )
        self._s3.put_object(Bucket=self.bucket, Key=prefix + BUNDLE_FILE, Body=spec.to_json().encode())

    def activate(self, version: str) -> None:
        pointer = {"model_version": version, "activated_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self._s3.put_object(Bucket=self.bucket, Key=ACTIVE_KEY, Body=json.dumps(pointer).encode())
