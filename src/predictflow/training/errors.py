"""Why a model cannot be trained. Each message names what is wrong and how to fix it."""

from __future__ import annotations

from predictflow.bundle.exceptions import BundleError


class TrainingError(BundleError):
    """The data, the schema or the options cannot give a bundle (nothing is written)."""
