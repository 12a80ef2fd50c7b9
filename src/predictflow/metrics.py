"""Quality metrics for labelled records: accuracy, ROC AUC and log-loss, with numpy only
(the CLI and the Lambda layer do not carry scikit-learn; tests check these against it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Quality:
    records: int
    accuracy: float
    roc_auc: float
    log_loss: float


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


def log_loss(labels: npt.NDArray[np.int_], scores: npt.NDArray[np.float64], eps: float = 1e-15) -> float:
    clipped = np.clip(scores, eps, 1 - eps)
    return float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


def quality(labels: npt.NDArray[np.int_], scores: npt.NDArray[np.float64]) -> Quality:
    return Quality(
        records=len(labels),
        accuracy=float(np.mean((scores >= 0.5) == (labels == 1))) if len(labels) else float("nan"),
        roc_auc=roc_auc(labels, scores),
        log_loss=log_loss(labels, scores) if len(labels) else float("nan"),
    )
