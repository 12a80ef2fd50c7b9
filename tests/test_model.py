"""The income model: reproducible, small, no train/serve skew, and as good as promised."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from predictflow.model_artifact import ARTIFACT_DIR, METADATA_FILE, MODEL_FILE, load_artifact
from predictflow.predictors import EmbeddedPredictor, Prediction
from predictflow.records import RecordError, RejectReason
from predictflow.schema import FEATURE_NAMES, schema_fingerprint
from tests.conftest import ROOT
from tests.test_records import ARTICLE_VALUES


@pytest.fixture(scope="module")
def training() -> Any:
    from model import train

    features, labels = train.load_training_data(train.DATA)
    return train, features, labels


@pytest.fixture(scope="module")
def predictor() -> EmbeddedPredictor:
    return EmbeddedPredictor()


def test_artifact_is_small_and_its_metadata_describes_it() -> None:
    metadata = json.loads((ARTIFACT_DIR / METADATA_FILE).read_text())
    assert (ARTIFACT_DIR / MODEL_FILE).stat().st_size < 5 * 1024 * 1024
    assert metadata["schema_fingerprint"] == schema_fingerprint()
    assert [f["name"] for f in metadata["features"]] == list(FEATURE_NAMES)
    assert metadata["training_data"]["md5"] == "5d7c39d7b8804f071cdd1f2a7c460872"
    for library in ("lightgbm", "onnxruntime", "onnxmltools", "numpy"):
        assert metadata["libraries"][library]
    cv = metadata["cross_validation"]
    assert cv["folds"] == 5
    assert cv["roc_auc_mean"] >= 0.927
    assert cv["log_loss_mean"] <= 0.280


def test_training_reproduces_the_committed_artifact_byte_for_byte(training: Any) -> None:
    train, features, labels = training
    metadata = load_artifact().metadata
    assert train.train_model(features, labels, metadata["rounds"]) == load_artifact().model_bytes


def test_served_probabilities_equal_the_training_librarys_own(
    training: Any, predictor: EmbeddedPredictor
) -> None:
    import lightgbm

    train, features, labels = training
    booster = lightgbm.train(
        train.PARAMS, lightgbm.Dataset(features, labels), load_artifact().metadata["rounds"]
    )
    expected = booster.predict(features)
    served = predictor.probabilities(features.astype(np.float32))
    assert np.abs(served - expected).max() < 1e-5


def test_the_articles_record_gets_a_label_probability_and_version(predictor: EmbeddedPredictor) -> None:
    (prediction,) = predictor.predict([ARTICLE_VALUES])
    assert isinstance(prediction, Prediction)
    assert prediction.label in (">50K", "<=50K")
    assert 0.0 < prediction.probability < 1.0
    assert prediction.label == (">50K" if prediction.probability >= 0.5 else "<=50K")
    assert prediction.model_version == load_artifact().version
    assert prediction.warnings == ()


def test_a_missing_category_is_scored(predictor: EmbeddedPredictor) -> None:
    row: list[Any] = list(ARTICLE_VALUES)
    row[1] = "?"
    (prediction,) = predictor.predict([row])
    assert 0.0 < prediction.probability < 1.0
    assert prediction.warnings == ()


def test_an_unseen_category_is_scored_as_missing_and_flagged(predictor: EmbeddedPredictor) -> None:
    unseen: list[Any] = list(ARTICLE_VALUES)
    unseen[1] = "Space-agency"
    missing: list[Any] = list(ARTICLE_VALUES)
    missing[1] = "?"
    flagged, as_missing = predictor.predict([unseen, missing])
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
        predictor.predict([row])
    assert str(raised.value) == message
    assert raised.value.reason is RejectReason.INVALID_VALUE


def test_a_short_record_is_a_validation_error_not_a_runtime_traceback(predictor: EmbeddedPredictor) -> None:
    with pytest.raises(RecordError, match="expected 14 values, got 3"):
        predictor.predict([[1, 2, 3]])


def test_an_empty_batch_predicts_nothing(predictor: EmbeddedPredictor) -> None:
    assert predictor.predict([]) == []


def test_the_model_loads_only_with_the_schema_it_was_trained_on(tmp_path: Any) -> None:
    from predictflow.model_artifact import ModelArtifactError

    metadata = json.loads((ARTIFACT_DIR / METADATA_FILE).read_text())
    metadata["schema_fingerprint"] = "0000"
    (tmp_path / METADATA_FILE).write_text(json.dumps(metadata))
    (tmp_path / MODEL_FILE).write_bytes((ARTIFACT_DIR / MODEL_FILE).read_bytes())
    with pytest.raises(ModelArtifactError, match="another record schema"):
        load_artifact(tmp_path)
    with pytest.raises(ModelArtifactError, match="not found"):
        load_artifact(tmp_path / "missing")


def test_cross_validated_quality_on_the_training_split_meets_the_bar(training: Any) -> None:
    """Scores held-out folds with the committed settings (AUC >= 0.927, log-loss <= 0.280)."""
    import lightgbm
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    train, features, labels = training
    rounds = load_artifact().metadata["rounds"]
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

    data = (ROOT / "model" / "data" / "adult.data").read_bytes()
    assert hashlib.md5(data).hexdigest() == "5d7c39d7b8804f071cdd1f2a7c460872"
