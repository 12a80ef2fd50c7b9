"""The evaluation report written into a bundle: `report/index.html` and PNG figures.

Everything is computed on out-of-fold predictions (each record scored by a model that did not
see it), so the figures say how the model does on new records of the same kind, not how well it
remembers its training data. Plain HTML, no scripts, no external assets; figures are rendered by
matplotlib's Agg backend at a low resolution with no timestamp, so the same predictions always
give the same files.

    binary       ROC and precision-recall curves, calibration, a threshold table (precision, recall,
                 F1 and the share predicted positive at cut-offs 0.05 .. 0.95, as Amazon ML's
                 score-threshold page had)
    multiclass   confusion matrix, per-class precision/recall/F1
    regression   predicted against actual, residuals
    every task   feature importance (total gain of each feature's splits)
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from predictflow.bundle.format import TargetSpec

Floats = npt.NDArray[np.float64]
DPI: Final = 80
THRESHOLDS: Final = tuple(round(0.05 * i, 2) for i in range(1, 20))
TOP_FEATURES: Final = 25


def headline_metrics(target: TargetSpec, y: Floats, oof: Floats) -> dict[str, float]:
    """The bundle's headline metrics, on out-of-fold predictions (y: class index or value)."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        log_loss,
        mean_absolute_error,
        r2_score,
        roc_auc_score,
    )

    if target.task == "binary":
        threshold = target.threshold or 0.5
        return {
            "roc_auc": float(roc_auc_score(y, oof)),
            "log_loss": float(log_loss(y, np.clip(oof, 1e-15, 1 - 1e-15), labels=[0, 1])),
            "accuracy": float(accuracy_score(y, oof >= threshold)),
        }
    if target.task == "multiclass":
        predicted = np.argmax(oof, axis=1)
        return {
            "log_loss": float(log_loss(y, np.clip(oof, 1e-15, 1.0), labels=list(range(oof.shape[1])))),
            "accuracy": float(accuracy_score(y, predicted)),
            "macro_f1": float(f1_score(y, predicted, average="macro")),
        }
    return {
        "rmse": float(math.sqrt(np.mean((y - oof) ** 2))),
        "mae": float(mean_absolute_error(y, oof)),
        "r2": float(r2_score(y, oof)),
    }


def threshold_table(y: Floats, oof: Floats) -> list[dict[str, float]]:
    rows = []
    positives = max(float(y.sum()), 1.0)
    for cut in THRESHOLDS:
        predicted = oof >= cut
        true_positive = float((predicted & (y == 1)).sum())
        precision = true_positive / predicted.sum() if predicted.any() else 1.0
        recall = true_positive / positives
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "threshold": cut,
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(f1),
                "predicted_positive": float(predicted.mean()),
            }
        )
    return rows


def write_report(
    folder: Path,
    *,
    title: str,
    target: TargetSpec,
    y: Floats,
    oof: Floats,
    feature_names: Sequence[str],
    importance: Floats,
    metrics: Mapping[str, float],
    facts: Mapping[str, Any],
) -> list[str]:
    """Write the report; returns the files written (relative to `folder`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "svg.hashsalt": "predictflow"})
    folder.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []

    def save(figure: Any, name: str, caption: str) -> None:
        figure.tight_layout()
        figure.savefig(folder / name, dpi=DPI, metadata={"Software": None})
        plt.close(figure)
        figures.append((name, caption))

    sections: list[str] = []
    if target.task == "binary":
        _binary_figures(plt, save, target, y, oof)
        sections.append(_threshold_html(target, threshold_table(y, oof)))
    elif target.task == "multiclass":
        sections.append(_multiclass_figures(plt, save, target, y, oof))
    else:
        _regression_figures(plt, save, target, y, oof)
    _importance_figure(plt, save, feature_names, importance)
    page = _page(title, target, metrics, facts, figures, sections)
    (folder / "index.html").write_text(page, encoding="utf-8")
    return ["index.html", *(name for name, _ in figures)]


def _binary_figures(plt: Any, save: Any, target: TargetSpec, y: Floats, oof: Floats) -> None:
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    false_positive, true_positive, _ = roc_curve(y, oof)
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.plot(false_positive, true_positive, label=f"AUC {auc(false_positive, true_positive):.4f}")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    save(figure, "roc.png", "ROC curve: each point is one threshold")

    precision, recall, _ = precision_recall_curve(y, oof)
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.plot(recall, precision)
    axes.axhline(float(y.mean()), linestyle=":", color="grey")
    axes.set(xlabel="recall", ylabel="precision", title=f"precision-recall ({target.positive})")
    save(figure, "precision_recall.png", "Precision against recall; the dotted line is the positive share")

    bins = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(oof, bins) - 1, 0, 9)
    mean_predicted = [float(oof[which == b].mean()) for b in range(10) if (which == b).any()]
    observed = [float(y[which == b].mean()) for b in range(10) if (which == b).any()]
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.plot(mean_predicted, observed, marker="o")
    axes.set(xlabel="mean predicted probability", ylabel="observed positive share", title="calibration")
    save(figure, "calibration.png", "Calibration: predicted probability against the observed rate, in tenths")


def _multiclass_figures(plt: Any, save: Any, target: TargetSpec, y: Floats, oof: Floats) -> str:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(target.labels)
    predicted = np.argmax(oof, axis=1)
    matrix = confusion_matrix(y, predicted, labels=list(range(len(labels))))
    size = min(2 + 0.5 * len(labels), 10)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=90)
    axes.set_yticks(range(len(labels)), labels)
    axes.set(xlabel="predicted", ylabel="actual", title="confusion matrix")
    if len(labels) <= 15:
        for i in range(len(labels)):
            for j in range(len(labels)):
                axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7)
    save(figure, "confusion.png", "Confusion matrix: rows are the actual class, columns the predicted one")

    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=list(range(len(labels))), zero_division=0
    )
    figure, axes = plt.subplots(figsize=(5, max(2.0, 0.3 * len(labels) + 1)))
    axes.barh(labels, f1)
    axes.invert_yaxis()
    axes.set(xlabel="F1", xlim=(0, 1), title="F1 per class")
    save(figure, "f1_per_class.png", "F1 per class")
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{p:.3f}</td><td>{r:.3f}</td><td>{f:.3f}</td><td>{int(s)}</td></tr>"
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    )
    return (
        "<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
        f"<th>records</th></tr>{rows}</table>"
    )


def _regression_figures(plt: Any, save: Any, target: TargetSpec, y: Floats, oof: Floats) -> None:
    low, high = float(min(y.min(), oof.min())), float(max(y.max(), oof.max()))
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.scatter(y, oof, s=2, alpha=0.3, rasterized=True)
    axes.plot([low, high], [low, high], linestyle=":", color="grey")
    axes.set(xlabel=f"actual {target.name}", ylabel="predicted", title="predicted against actual")
    save(figure, "predicted_vs_actual.png", "Predicted against actual; the dotted line is a perfect model")

    residuals = y - oof
    figure, (left, right) = plt.subplots(1, 2, figsize=(7, 3))
    left.scatter(oof, residuals, s=2, alpha=0.3, rasterized=True)
    left.axhline(0, linestyle=":", color="grey")
    left.set(xlabel="predicted", ylabel="actual - predicted", title="residuals")
    right.hist(residuals, bins=50)
    right.set(xlabel="actual - predicted", title="residual distribution")
    save(figure, "residuals.png", "Residuals against the prediction, and their distribution")


def _importance_figure(plt: Any, save: Any, names: Sequence[str], importance: Floats) -> None:
    total = float(importance.sum()) or 1.0
    order = sorted(range(len(names)), key=lambda i: (-importance[i], names[i]))[:TOP_FEATURES]
    figure, axes = plt.subplots(figsize=(5, max(2.0, 0.25 * len(order) + 1)))
    axes.barh([names[i] for i in order], [importance[i] / total for i in order])
    axes.invert_yaxis()
    axes.set(xlabel="share of total gain", title="feature importance")
    save(figure, "importance.png", f"Feature importance: share of the total split gain (top {TOP_FEATURES})")


def _threshold_html(target: TargetSpec, rows: list[dict[str, float]]) -> str:
    body = "".join(
        f"<tr><td>{r['threshold']:.2f}</td><td>{r['precision']:.3f}</td><td>{r['recall']:.3f}</td>"
        f"<td>{r['f1']:.3f}</td><td>{r['predicted_positive']:.3f}</td></tr>"
        for r in rows
    )
    return (
        f"<h2>Score threshold</h2><p>A record is labelled {html.escape(str(target.positive))!s} when its "
        f"probability is at least the threshold (the bundle's is {target.threshold}).</p>"
        "<table><tr><th>threshold</th><th>precision</th><th>recall</th><th>F1</th>"
        f"<th>predicted positive</th></tr>{body}</table>"
    )


def _page(
    title: str,
    target: TargetSpec,
    metrics: Mapping[str, float],
    facts: Mapping[str, Any],
    figures: Sequence[tuple[str, str]],
    sections: Sequence[str],
) -> str:
    metric_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{value:.4f}</td></tr>" for name, value in metrics.items()
    )
    fact_rows = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{html.escape(str(value))}</td></tr>"
        for name, value in facts.items()
    )
    images = "".join(
        f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}'
        "</figcaption></figure>"
        for name, caption in figures
    )
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
        "text-align:right}td:first-child{text-align:left}figure{display:inline-block;margin:1em}"
        "figcaption{font-size:small;max-width:24em}"
    )
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
        f"<p>Task: {target.task}, target <code>{html.escape(target.name)}</code>. Every figure and metric "
        "below is computed on out-of-fold predictions: each record is scored by a model trained "
        "without it.</p>\n"
        f"<h2>Metrics</h2><table>{metric_rows}</table>\n<h2>Training</h2><table>{fact_rows}</table>\n"
        f"{''.join(sections)}\n<h2>Figures</h2>{images}\n</body></html>\n"
    )
