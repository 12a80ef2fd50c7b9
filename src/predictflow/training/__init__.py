"""Training bundles (`predictflow model train`): schema inference, LightGBM with cross-validated
settings, deterministic ONNX export and an evaluation report.

Never imported by the pipeline or the Lambda layer (src/build_layer.py leaves this package out):
it needs LightGBM, scikit-learn, matplotlib and the ONNX converters, which are dev/CLI-only.

    from predictflow.training import TrainOptions, train_bundle
    result = train_bundle(Path("data.csv"), Path("my-bundle"), TrainOptions(target="y"))
"""

from predictflow.training.errors import TrainingError
from predictflow.training.trainer import DEFAULT_SEED, STAGES, TrainOptions, TrainResult, train_bundle

__all__ = ("DEFAULT_SEED", "STAGES", "TrainOptions", "TrainResult", "TrainingError", "train_bundle")
