"""Why a bundle cannot be used. Each message says what is wrong and how to put it right."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle that is missing, malformed, or inconsistent with itself."""


class UnsupportedFormat(BundleError):
    """A bundle written by a newer predictflow than this one."""


class SchemaMismatch(BundleError):
    """The model does not fit the schema the bundle describes (inputs, outputs or labels)."""
