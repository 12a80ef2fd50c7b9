"""Prediction lines: what each task writes, byte for byte the documented entry, and the metrics."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

from predictflow.bundle import TargetSpec
from predictflow.metrics import evaluate
from predictflow.predictions import labels_of, prediction_lines

BINARY = TargetSpec("income", "binary", ("<=50K", ">50K"), ">50K", 0.5)
MULTICLASS = TargetSpec("species", "multiclass", ("Adelie", 'Chin"strap', "Gentoo"))
REGRESSION = TargetSpec("price", "regression")


def reference(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":"))


def test_binary_lines_hold_line_id_version_actual_label_and_probability() -> None:
    answers = np.array([0.2379, 0.5, 0.49999])
    text = prediction_lines(
        BINARY, "adult-%x", [2, 7, 9], answers, ids=["a", 'b"1', "ü"], actual=[None, ">50K", "<=50K"]
    )
    assert text.splitlines() == [
        reference(
            {"line": 2, "id": "a", "model_version": "adult-%x", "label": "<=50K", "probability": 0.2379}
        ),
        reference(
            {
                "line": 7,
                "id": 'b"1',
                "model_version": "adult-%x",
                "actual": ">50K",
                "label": ">50K",
                "probability": 0.5,
            }
        ),
        reference(
            {
                "line": 9,
                "id": "ü",
                "model_version": "adult-%x",
                "actual": "<=50K",
                "label": "<=50K",
                "probability": 0.49999,
            }
        ),
    ]


def test_multiclass_lines_hold_every_labels_probability_and_the_most_probable_label() -> None:
    answers = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])
    text = prediction_lines(MULTICLASS, "v", [1, 2], answers)
    first, second = (json.loads(line) for line in text.splitlines())
    assert first == {
        "line": 1,
        "model_version": "v",
        "label": 'Chin"strap',
        "probabilities": {"Adelie": 0.1, 'Chin"strap': 0.7, "Gentoo": 0.2},
    }
    assert second["label"] == "Adelie"  # a tie goes to the first label


def test_regression_lines_hold_the_value_and_a_replayed_line_its_origin() -> None:
    origin = {"source_key": "incoming/a.csv", "version_id": "v1", "line": 17}
    text = prediction_lines(
        REGRESSION, "v", [3, 4], np.array([12.5, -1.0]), actual=[10.0, None], origins={3: origin}
    )
    assert text.splitlines() == [
        reference({"line": 3, "origin": origin, "model_version": "v", "actual": 10.0, "value": 12.5}),
        reference({"line": 4, "model_version": "v", "value": -1.0}),
    ]


def test_a_score_at_the_threshold_is_the_positive_label_as_in_amazon_ml() -> None:
    strict = TargetSpec("t", "binary", ("no", "yes"), "yes", 0.8)
    assert labels_of(strict, np.array([0.79, 0.8, 0.95])) == ["no", "yes", "yes"]


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(st.sampled_from(["<=50K", ">50K"]), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])),
        min_size=2,
        max_size=60,
    ).filter(lambda pairs: len({label for label, _ in pairs}) == 2)
)
def test_binary_metrics_match_scikit_learn_including_ties(pairs: list[tuple[str, float]]) -> None:
    actual: list[Any] = [label for label, _ in pairs]
    scores = np.array([score for _, score in pairs])
    labels = np.array([label == ">50K" for label in actual], dtype=int)
    result = evaluate(BINARY, actual, scores)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert result["log_loss"] == pytest.approx(log_loss(labels, np.clip(scores, 1e-15, 1 - 1e-15)), abs=1e-9)
    assert result["accuracy"] == np.mean((scores >= 0.5) == (labels == 1))


def test_multiclass_and_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    probabilities = rng.dirichlet([1, 1, 1], size=50)
    actual: list[Any] = [MULTICLASS.labels[i] for i in rng.integers(0, 3, 50)]
    classes = [MULTICLASS.labels.index(label) for label in actual]
    result = evaluate(MULTICLASS, actual, probabilities)
    assert result["log_loss"] == pytest.approx(log_loss(classes, probabilities, labels=[0, 1, 2]), abs=1e-9)
    values = rng.normal(size=40)
    truth: list[Any] = list(rng.normal(size=40))
    regression = evaluate(REGRESSION, [*truth, None], np.append(values, 99.0))
    assert regression["records"] == 40
    assert regression["rmse"] == pytest.approx(mean_squared_error(truth, values) ** 0.5)
