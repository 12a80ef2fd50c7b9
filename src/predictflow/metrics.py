"""Quality metrics for labelled records, per task, with numpy only (the CLI and the Lambda layer do
not carry scikit-learn; tests check these against it).

    binary       accuracy, ROC AUC, log-loss      (Amazon ML's BinaryAUC)
    multiclass   accuracy, log-loss, macro F1     (Amazon ML's MulticlassAvgFScore)
    regression   RMSE, MAE                        (Amazon ML's RegressionRMSE)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from predictflow.bundle.format import TargetSpec
from predictflow.records import Actual

EPSILON = 1e-15


def roc_auc(labels: npt.NDArray[np.int_], scores: npt.NDArray[np.float64]) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic, ties given average ranks."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def log_loss(labels: npt.NDArray[np.int_], scores: npt.NDArray[np.float64]) -> float:
    """Binary log-loss of P(positive)."""
    clipped = np.clip(scores, EPSILON, 1 - EPSILON)
    return float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


def multiclass_log_loss(classes: npt.NDArray[np.int_], probabilities: npt.NDArray[np.float64]) -> float:
    chosen = probabilities[np.arange(len(classes)), classes]
    return float(-np.mean(np.log(np.clip(chosen, EPSILON, 1.0))))


def macro_f1(classes: npt.NDArray[np.int_], predicted: npt.NDArray[np.int_], count: int) -> float:
    scores = []
    for label in range(count):
        true_positive = int(np.sum((predicted == label) & (classes == label)))
        support = int(np.sum(classes == label)) + int(np.sum(predicted == label))
        if support:
            scores.append(2 * true_positive / support)
    return float(np.mean(scores)) if scores else float("nan")


def evaluate(
    target: TargetSpec, actual: Sequence[Actual], answers: npt.NDArray[np.float64]
) -> dict[str, float]:
    """The task's metrics on the records whose target is known (`answers` as `answers_of` gives)."""
    known = np.array([value is not None for value in actual], dtype=bool)
    if not known.any():
        return {}
    values = [value for value in actual if value is not None]
    scored = answers[known]
    if target.task == "regression":
        errors = scored - np.asarray(values, dtype=np.float64)
        return {
            "records": len(values),
            "rmse": float(np.sqrt(np.mean(errors**2))),
            "mae": float(np.mean(np.abs(errors))),
        }
    if target.task == "binary":
        assert target.threshold is not None
        labels = np.array([value == target.positive for value in values], dtype=np.int64)
        return {
            "records": len(values),
            "accuracy": float(np.mean((scored >= target.threshold) == (labels == 1))),
            "roc_auc": roc_auc(labels, scored),
            "log_loss": log_loss(labels, scored),
        }
    index = {label: i for i, label in enumerate(target.labels)}
    classes = np.array([index[str(value)] for value in values], dtype=np.int64)
    predicted = np.argmax(scored, axis=1)
    return {
        "records": len(values),
        "accuracy": float(np.mean(predicted == classes)),
        "log_loss": multiclass_log_loss(classes, scored),
        "macro_f1": macro_f1(classes, predicted, len(target.labels)),
    }
