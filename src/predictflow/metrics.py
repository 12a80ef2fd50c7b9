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


def encode_targets(
    target: TargetSpec, actual: Sequence[Actual]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.generic]]:
    """Which records' targets are known, and those targets as the metrics read them: binary 1
    for the positive label (int8), multiclass the label's index, regression the value (float64).

    The one place that defines the encoding: `predict_file` encodes each batch as it is scored
    (in the process that scored it) and keeps only these arrays, not a Python object per record.
    """
    values = np.asarray(actual, dtype=object)
    known = np.asarray(values != None, dtype=bool)  # noqa: E711 - elementwise, in C
    given = values[known]
    if target.task == "regression":
        return known, given.astype(np.float64)
    if target.task == "binary":
        assert target.positive is not None
        return known, np.equal(given, target.positive).astype(np.int8)
    # Labels are compared as text (a label read as a number is still its spelling).
    spelled = given.astype(str)
    classes = np.full(len(given), -1, dtype=np.int64)
    for index, label in enumerate(target.labels):
        classes[spelled == label] = index
    if (classes < 0).any():
        unknown = given[classes < 0][0]
        raise ValueError(f"{target.name}: {unknown!r} is not one of the labels {list(target.labels)}")
    return known, classes


def evaluate_encoded(
    target: TargetSpec, truth: npt.NDArray[np.generic], scored: npt.NDArray[np.float64]
) -> dict[str, float]:
    """The task's metrics from the known records' targets (`encode_targets`) and their answers
    (`answers_of`'s rows for those records)."""
    if not len(truth):
        return {}
    if target.task == "regression":
        errors = scored - truth.astype(np.float64)
        return {
            "records": len(truth),
            "rmse": float(np.sqrt(np.mean(errors**2))),
            "mae": float(np.mean(np.abs(errors))),
        }
    labels = truth.astype(np.int64)
    if target.task == "binary":
        assert target.threshold is not None
        return {
            "records": len(labels),
            "accuracy": float(np.mean((scored >= target.threshold) == (labels == 1))),
            "roc_auc": roc_auc(labels, scored),
            "log_loss": log_loss(labels, scored),
        }
    predicted = np.argmax(scored, axis=1)
    return {
        "records": len(labels),
        "accuracy": float(np.mean(predicted == labels)),
        "log_loss": multiclass_log_loss(labels, scored),
        "macro_f1": macro_f1(labels, predicted, len(target.labels)),
    }


def evaluate(
    target: TargetSpec, actual: Sequence[Actual], answers: npt.NDArray[np.float64]
) -> dict[str, float]:
    """The task's metrics on the records whose target is known (`answers` as `answers_of` gives)."""
    known, truth = encode_targets(target, actual)
    return evaluate_encoded(target, truth, answers[known])
