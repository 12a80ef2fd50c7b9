"""Prediction lines: what each task writes, byte for byte the documented entry, and the metrics."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

from predictflow.bundle import TargetSpec
from predictflow.bundle.format import Task
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


def lines_before(
    target: TargetSpec,
    model_version: str,
    lines: list[int],
    answers: Any,
    *,
    ids: list[str] | None = None,
    actual: list[Any] | None = None,
    origins: dict[int, dict[str, Any]] | None = None,
) -> str:
    """`prediction_lines` as it was before it spelled each label once per batch (a json.dumps
    per record): the new one must write the same bytes."""
    quote = json.dumps
    head = [f'{{"line":{line}' for line in lines]
    if ids is not None:
        head = [f'{h},"id":{quote(row_id)}' for h, row_id in zip(head, ids, strict=True)]
    if origins:
        head = [
            f'{h},"origin":{quote(origins[line], separators=(",", ":"))}' if line in origins else h
            for h, line in zip(head, lines, strict=True)
        ]
    middle = [f',"model_version":{quote(model_version)}'] * len(lines)
    if actual is not None:
        middle = [m if a is None else f'{m},"actual":{quote(a)}' for m, a in zip(middle, actual, strict=True)]
    if target.task == "regression":
        tails = [f',"value":{value!r}}}\n' for value in answers.tolist()]
    else:
        labels = [quote(label) for label in labels_of(target, answers)]
        if target.task == "binary":
            tails = [
                f',"label":{label},"probability":{p!r}}}\n'
                for label, p in zip(labels, answers.tolist(), strict=True)
            ]
        else:
            keys = [quote(label) for label in target.labels]
            objects = [
                "{" + ",".join(f"{k}:{p!r}" for k, p in zip(keys, row, strict=True)) + "}"
                for row in answers.tolist()
            ]
            tails = [
                f',"label":{label},"probabilities":{probabilities}}}\n'
                for label, probabilities in zip(labels, objects, strict=True)
            ]
    return "".join(map("".join, zip(head, middle, tails, strict=True)))


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
PROBABILITY = st.floats(0, 1) | st.floats(0, 1, width=32) | st.sampled_from([0.5, 0.8, float("nan")])


@st.composite
def batches(draw: st.DrawFn) -> tuple[TargetSpec, dict[str, Any], Any]:
    """A target of any task (labels with quotes, `%`, any script), and a batch for it."""
    task: Task = draw(st.sampled_from(["binary", "multiclass", "regression"]))
    labels: tuple[str, ...] = ()
    if task != "regression":
        count = 2 if task == "binary" else draw(st.integers(3, 5))
        labels = tuple(
            draw(
                st.lists(
                    TEXT | st.sampled_from(["%s", '"', "ü", "%r"]),
                    min_size=count,
                    max_size=count,
                    unique=True,
                )
            )
        )
    if task == "binary":
        target = TargetSpec("t", task, labels, labels[1], draw(st.sampled_from([0.5, 0.8, 0.0, 1.0])))
    else:
        target = TargetSpec("t", task, labels)
    size = draw(st.integers(0, 12))
    lines = sorted(draw(st.lists(st.integers(1, 10**9), min_size=size, max_size=size, unique=True)))
    if task == "multiclass":
        answers = np.array(
            draw(
                st.lists(
                    st.lists(PROBABILITY, min_size=len(labels), max_size=len(labels)),
                    min_size=size,
                    max_size=size,
                )
            ),
            dtype=np.float64,
        ).reshape(size, len(labels))
    else:
        numbers = PROBABILITY if task == "binary" else st.floats(allow_nan=True, allow_infinity=True)
        answers = np.array(draw(st.lists(numbers, min_size=size, max_size=size)), dtype=np.float64)
    options: dict[str, Any] = {}
    if draw(st.booleans()):
        options["ids"] = draw(st.lists(TEXT, min_size=size, max_size=size))
    if draw(st.booleans()):
        value: st.SearchStrategy[Any] = (
            st.floats() if task == "regression" else st.sampled_from(labels) | TEXT
        )
        options["actual"] = draw(st.lists(st.none() | value, min_size=size, max_size=size))
    if len(lines) > 0 and draw(st.booleans()):
        origin = st.fixed_dictionaries(
            {"source_key": TEXT, "version_id": st.none() | TEXT, "line": st.integers(1, 99)}
        )
        options["origins"] = draw(st.dictionaries(st.sampled_from(lines), origin))
    return target, {"lines": lines, **options}, answers


@settings(max_examples=400)
@given(batches())
def test_lines_are_the_bytes_they_were_and_the_documented_entries(
    batch: tuple[TargetSpec, dict[str, Any], Any],
) -> None:
    target, options, answers = batch
    text = prediction_lines(target, 'm-%s"ü', answers=answers, **options)
    actual = options.get("actual") or []
    zeros = {math.copysign(1, a) for a in actual if isinstance(a, float) and a == 0}
    if zeros != {1, -1}:
        # The old spelled each `actual` once by dict, where 0.0 and -0.0 are one key: it wrote
        # whichever came first for both (json.dumps writes each as itself, as the new does).
        assert text == lines_before(target, 'm-%s"ü', answers=answers, **options)
    if not np.isfinite(answers).all():
        return  # repr spells NaN `nan` (as it always did), json.dumps `NaN`
    expected = []
    for at, line in enumerate(options["lines"]):
        entry: dict[str, Any] = {"line": line}
        if "ids" in options:
            entry["id"] = options["ids"][at]
        if line in options.get("origins", {}):
            entry["origin"] = options["origins"][line]
        entry["model_version"] = 'm-%s"ü'
        if actual and actual[at] is not None:
            entry["actual"] = actual[at]
        if target.task == "regression":
            entry["value"] = float(answers[at])
        elif target.task == "binary":
            entry["label"] = labels_of(target, answers[at : at + 1])[0]
            entry["probability"] = float(answers[at])
        else:
            entry["label"] = labels_of(target, answers[at : at + 1])[0]
            entry["probabilities"] = dict(zip(target.labels, answers[at].tolist(), strict=True))
        expected.append(reference(entry) + "\n")
    assert text == "".join(expected)


def test_lines_and_answers_of_different_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"shorter|longer"):
        prediction_lines(BINARY, "v", [1, 2, 3], np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"shorter|longer"):
        prediction_lines(BINARY, "v", [1, 2], np.array([0.1, 0.2]), actual=[">50K"])


def test_each_actual_number_is_spelled_as_json_dumps_spells_it() -> None:
    """Numbers are not spelled once per batch as labels are: 0.0 and -0.0 are one dict key."""
    actual: list[Any] = [0.0, -0.0, float("nan"), float("inf"), 1e300, None]
    text = prediction_lines(REGRESSION, "v", [1, 2, 3, 4, 5, 6], np.ones(6), actual=actual)
    spelled = [line.partition('"actual":')[2].split(",")[0] for line in text.splitlines()]
    assert spelled == ["0.0", "-0.0", "NaN", "Infinity", "1e+300", ""]
