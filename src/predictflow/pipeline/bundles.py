"""The bundles a Lambda container serves, cached by version for the container's life.

Versions never change once deployed (a version is a hash of its content), so a cached bundle
never goes stale; only the active pointer does, and Fetch reads that afresh for a file unless
it read it less than `pointer_seconds` ago.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from predictflow.bundle import Bundle, default_bundle
from predictflow.bundle.store import ModelStore
from predictflow.pipeline.stores import storage_errors
from predictflow.predictors.base import Predictor

PredictorFactory = Callable[[Bundle], Predictor]


class Bundles:
    def __init__(
        self,
        store: ModelStore | None,
        make_predictor: PredictorFactory | None = None,
        *,
        pointer_seconds: float = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._make_predictor = make_predictor
        self._bundles: dict[tuple[str, bool], Bundle] = {}
        self._predictors: dict[str, Predictor] = {}
        self._lock = threading.Lock()
        self._pointer_seconds = pointer_seconds
        self._clock = clock
        self._pointer: tuple[float, str] | None = None

    @property
    def scores_records(self) -> bool:
        """Whether this container can score records itself (it was given a predictor factory)."""
        return self._make_predictor is not None

    def active_version(self) -> str:
        """The version to pin for a new file: the store's active one, else the packaged default."""
        if self._store is None:
            return default_bundle().model_version
        if self._pointer is not None and self._clock() - self._pointer[0] < self._pointer_seconds:
            return self._pointer[1]
        read_at = self._clock()
        with storage_errors(f"s3://{self._store.bucket}"):
            deployed = self._store.active_version()
        version = deployed or default_bundle().model_version
        self._pointer = (read_at, version)
        return version

    def bundle(self, version: str, *, with_model: bool = False) -> Bundle:
        default = default_bundle()
        if version == default.model_version:
            return default
        if self._store is None:
            raise LookupError(
                f"model version {version} is not the packaged one and no model store is configured"
            )
        with self._lock:
            cached = self._bundles.get((version, True)) or self._bundles.get((version, with_model))
            if cached is None:
                cached = self._bundles[(version, with_model)] = self._store.load(
                    version, with_model=with_model
                )
            return cached

    def predictor(self, version: str) -> Predictor:
        if self._make_predictor is None:
            raise LookupError("this container does not score records")
        predictor = self._predictors.get(version)
        if predictor is None:
            predictor = self._predictors[version] = self._make_predictor(
                self.bundle(version, with_model=True)
            )
        return predictor
