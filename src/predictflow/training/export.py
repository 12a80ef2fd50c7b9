"""A LightGBM booster as deterministic ONNX bytes: the same booster always gives the same bytes."""

from __future__ import annotations

from typing import Any, Final

INPUT_NAME: Final = "features"
ONNX_OPSET: Final = 15


def onnx_bytes(booster: Any, *, name: str, width: int, input_name: str = INPUT_NAME) -> tuple[bytes, str]:
    """The model's bytes and the name of its scores output (`probabilities` for a classifier: (n, k)
    in class-index order; the regressor's single (n, 1) output otherwise)."""
    import onnx
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = onnxmltools.convert_lightgbm(
        booster,
        name=name,
        initial_types=[(input_name, FloatTensorType([None, width]))],
        zipmap=False,
        target_opset=ONNX_OPSET,
    )
    # The converter lists opsets in set order, which changes with Python's hash seed; sort
    # them so the same booster always gives the same bytes. It also stamps its own version
    # into the file; keep only what the model is.
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(domain, version) for domain, version in opsets)
    model.producer_name = "predictflow"
    model.producer_version = ""
    model.doc_string = ""
    outputs = [output.name for output in model.graph.output]
    output = "probabilities" if "probabilities" in outputs else outputs[-1]
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString()), output


def library_versions() -> dict[str, str]:
    """The versions of the libraries that trained and exported a model, as a bundle records them
    (the same data and these versions give the same bytes)."""
    import lightgbm
    import numpy as np
    import onnx
    import onnxmltools
    import onnxruntime
    import sklearn

    return {
        "lightgbm": lightgbm.__version__,
        "onnxmltools": onnxmltools.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }
