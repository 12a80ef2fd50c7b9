"""Model bundles: a model and everything needed to validate, encode and score its records.

    from predictflow.bundle import load_bundle, default_bundle
    bundle = load_bundle("my-bundle/")        # bundle.json + model.onnx
    bundle.schema                              # the compiled record layout
    bundle.model_version                       # a content hash

See `format.py` for the bundle file, `schema.py` for what it compiles to, `sources.py` for where
bundles are read from.
"""

from predictflow.bundle.exceptions import BundleError, SchemaMismatch, UnsupportedFormat
from predictflow.bundle.format import (
    BUNDLE_FILE,
    FORMAT_VERSION,
    MODEL_FILE,
    BundleSpec,
    FieldSpec,
    TargetSpec,
)
from predictflow.bundle.schema import CompiledSchema
from predictflow.bundle.sources import (
    DEFAULT_BUNDLE_DIR,
    Bundle,
    BundleSource,
    DirectorySource,
    S3Source,
    default_bundle,
    load_bundle,
)

__all__ = (
    "BUNDLE_FILE",
    "DEFAULT_BUNDLE_DIR",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "Bundle",
    "BundleError",
    "BundleSource",
    "BundleSpec",
    "CompiledSchema",
    "DirectorySource",
    "FieldSpec",
    "S3Source",
    "SchemaMismatch",
    "TargetSpec",
    "UnsupportedFormat",
    "default_bundle",
    "load_bundle",
)
