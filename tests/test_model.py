"""The Adult income bundle: reproducible, small, no train/serve skew, and as good as promised;
and what loading any bundle checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from predictflow.bundle import (
    BUNDLE_FILE,
    DEFAULT_BUNDLE_DIR,
    MODEL_FILE,
    BundleError,
    UnsupportedFormat,
    load_bundle,
)
from predictflow.bundle.format import content_version
from predictflow.errors import RecordError, RejectReason
from predictflow.predictions import Prediction, predict_rows
from predictflow.predictors import EmbeddedPredictor
from tests.fixtures import ADULT, ADULT_DATA, ARTICLE_VALUES, SCHEMA


@pytest.fixture(scope="module")
def training() -> Any:
    from model import train

    features, labels = train.load_training_data(train.DATA)
    return train, features, labels


@pytest.fixture(scope="module")
def predictor() -> EmbeddedPredictor:
    return EmbeddedPredictor(ADULT)


def test_the_default_bundle_is_small_and_describes_itself() -> None:
    spec = ADULT.spec
    assert (DEFAULT_BUNDLE_DIR / MODEL_FILE).stat().st_size < 5 * 1024 * 1024
    assert SCHEMA.feature_names[:3] == ("age", "workclass", "fnlwgt")
    assert spec.target.task == "binary"
    assert (spec.target.positive, spec.target.threshold) == (">50K", 0.5)
    assert spec.training["data"]["md5"] == "5d7c39d7b8804f071cdd1f2a7c460872"
    for library in ("lightgbm", "onnxruntime", "onnxmltools", "numpy"):
        assert spec.training["libraries"][library]
    cv = spec.training["cross_validation"]
    assert cv["folds"] == 5
    assert spec.training["metrics"]["roc_auc"] == cv["roc_auc_mean"] >= 0.927
    assert cv["log_loss_mean"] <= 0.280


def test_the_model_version_is_the_content_hash_of_the_bundle() -> None:
    assert ADULT.model_version == content_version(
        ADULT.spec.name, ADULT.spec.to_dict(), ADULT.model_bytes or b""
    )


def test_training_reproduces_the_committed_bundle_byte_for_byte(training: Any) -> None:
    train, features, labels = training
    assert train.train_model(features, labels, ADULT.spec.training["rounds"]) == ADULT.model_bytes


def test_served_probabilities_equal_the_training_librarys_own(
    training: Any, predictor: EmbeddedPredictor
) -> None:
    import lightgbm

    train, features, labels = training
    booster = lightgbm.train(train.PARAMS, lightgbm.Dataset(features, labels), ADULT.spec.training["rounds"])
    expected = booster.predict(features)
    served = predictor.scores(features.astype(np.float32))[:, 1]
    assert np.abs(served - expected).max() < 1e-5


def test_the_articles_record_gets_a_label_probability_and_version(predictor: EmbeddedPredictor) -> None:
    (prediction,) = predict_rows(predictor, [ARTICLE_VALUES])
    assert isinstance(prediction, Prediction)
    assert prediction.label in (">50K", "<=50K")
    assert prediction.probability is not None
    assert 0.0 < prediction.probability < 1.0
    assert prediction.label == (">50K" if prediction.probability >= 0.5 else "<=50K")
    assert prediction.model_version == ADULT.model_version
    assert prediction.warnings == ()


def test_a_missing_category_is_scored(predictor: EmbeddedPredictor) -> None:
    row: list[Any] = list(ARTICLE_VALUES)
    row[1] = "?"
    (prediction,) = predict_rows(predictor, [row])
    assert prediction.probability is not None
    assert 0.0 < prediction.probability < 1.0
    assert prediction.warnings == ()


def test_an_unseen_category_is_scored_as_missing_and_flagged(predictor: EmbeddedPredictor) -> None:
    unseen: list[Any] = list(ARTICLE_VALUES)
    unseen[1] = "Space-agency"
    missing: list[Any] = list(ARTICLE_VALUES)
    missing[1] = "?"
    flagged, as_missing = predict_rows(predictor, [unseen, missing])
    assert flagged.probability == as_missing.probability
    assert flagged.warnings == ("workclass: 'Space-agency' is not a known category; scored as missing",)


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (0, "forty", "age: 'forty' is not a whole number"),
        (0, 150, "age: 150 is outside 17..100"),
        (12, -3, "hours-per-week: -3 is outside 1..99"),
        (2, float("nan"), "fnlwgt: 'nan' is not a whole number"),
        (0, None, "age: 'None' is not a whole number"),
    ],
)
def test_a_bad_record_raises_the_typed_validation_error_naming_field_and_value(
    predictor: EmbeddedPredictor, index: int, value: object, message: str
) -> None:
    row: list[Any] = list(ARTICLE_VALUES)
    row[index] = value
    with pytest.raises(RecordError) as raised:
        predict_rows(predictor, [row])
    assert str(raised.value) == message
    assert raised.value.reason is RejectReason.INVALID_VALUE


def test_a_short_record_is_a_validation_error_not_a_runtime_traceback(predictor: EmbeddedPredictor) -> None:
    with pytest.raises(RecordError, match="expected 14 values, got 3"):
        predict_rows(predictor, [[1, 2, 3]])


def test_an_empty_batch_predicts_nothing(predictor: EmbeddedPredictor) -> None:
    assert predict_rows(predictor, []) == []


def _copy_of_default(tmp_path: Path, change: Any = None, model: bytes | None = None) -> Path:
    document = json.loads((DEFAULT_BUNDLE_DIR / BUNDLE_FILE).read_text())
    if change is not None:
        change(document)
    (tmp_path / BUNDLE_FILE).write_text(json.dumps(document))
    (tmp_path / MODEL_FILE).write_bytes(model if model is not None else ADULT.model_bytes or b"")
    return tmp_path


def test_a_model_file_changed_after_the_bundle_was_written_is_refused(tmp_path: Path) -> None:
    folder = _copy_of_default(tmp_path, model=(ADULT.model_bytes or b"") + b"\0")
    with pytest.raises(BundleError, match="does not match the bundle file's sha256"):
        load_bundle(folder)


def test_a_bundle_from_a_newer_format_is_refused_with_what_to_do(tmp_path: Path) -> None:
    folder = _copy_of_default(tmp_path, lambda d: d.update(format_version=99))
    with pytest.raises(UnsupportedFormat, match=r"newer than this predictflow reads.*upgrade predictflow"):
        load_bundle(folder)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["fields"].append(dict(d["fields"][0])), "field names are repeated: age"),
        (lambda d: d["target"].update(positive="rich"), "positive label"),
        (lambda d: d["target"].update(threshold=1.5), "threshold between 0 and 1"),
        (lambda d: d["fields"][1].update(type="text"), "'workclass': type 'text' is not one of"),
        (lambda d: d["fields"][1].pop("categories"), "'workclass': a category field needs its 'categories'"),
        (lambda d: d.pop("model"), "missing key 'model'"),
    ],
)
def test_an_inconsistent_bundle_file_is_refused_naming_the_problem(
    tmp_path: Path, change: Any, message: str
) -> None:
    with pytest.raises(BundleError, match=message):
        load_bundle(_copy_of_default(tmp_path, change))


def test_a_folder_that_is_not_a_bundle_says_so(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=f"has no {BUNDLE_FILE}"):
        load_bundle(tmp_path)
    (tmp_path / BUNDLE_FILE).write_text("{}")
    with pytest.raises(BundleError, match="not a predictflow bundle file"):
        load_bundle(tmp_path)


def test_cross_validated_quality_on_the_training_split_meets_the_bar(training: Any) -> None:
    """Scores held-out folds with the committed settings (AUC >= 0.927, log-loss <= 0.280)."""
    import lightgbm
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    train, features, labels = training
    rounds = ADULT.spec.training["rounds"]
    aucs, losses = [], []
    for fit, held_out in StratifiedKFold(5, shuffle=True, random_state=1).split(features, labels):
        booster = lightgbm.train(train.PARAMS, lightgbm.Dataset(features[fit], labels[fit]), rounds)
        probability = booster.predict(features[held_out])
        aucs.append(roc_auc_score(labels[held_out], probability))
        losses.append(log_loss(labels[held_out], probability))
    assert np.mean(aucs) >= 0.927
    assert np.mean(losses) <= 0.280


def test_training_data_in_the_repo_is_the_published_split() -> None:
    import hashlib

    data = ADULT_DATA.read_bytes()
    assert hashlib.md5(data).hexdigest() == "5d7c39d7b8804f071cdd1f2a7c460872"
