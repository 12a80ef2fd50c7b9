"""Settings fail loudly at cold start, naming every variable at fault."""

from __future__ import annotations

import pytest

from predictflow.pipeline.settings import Settings, SettingsError

VALID = {
    "PREDICTFLOW_OUTPUT_BUCKET": "out",
    "PREDICTFLOW_PREDICTIONS_PREFIX": "predictions/",
    "PREDICTFLOW_WORK_PREFIX": "work/",
    "PREDICTFLOW_DEAD_LETTER_TABLE": "dead",
    "PREDICTFLOW_LEDGER_TABLE": "ledger",
    "PREDICTFLOW_MAX_FILE_BYTES": "1000000",
    "PREDICTFLOW_CHUNK_BYTES": "4096",
    "PREDICTFLOW_PREDICTOR_BACKEND": "embedded",
}


def test_a_complete_environment_gives_typed_settings() -> None:
    settings = Settings.from_env(VALID)
    assert settings.max_file_bytes == 1_000_000
    assert settings.predictor_backend == "embedded"


def test_every_missing_or_malformed_variable_is_named_at_once() -> None:
    broken = VALID | {"PREDICTFLOW_CHUNK_BYTES": "lots", "PREDICTFLOW_WORK_PREFIX": "work"}
    del broken["PREDICTFLOW_LEDGER_TABLE"]
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(broken)
    message = str(raised.value)
    assert "PREDICTFLOW_LEDGER_TABLE is not set" in message
    assert "PREDICTFLOW_CHUNK_BYTES must be a whole number (got 'lots')" in message
    assert "PREDICTFLOW_WORK_PREFIX must end with '/'" in message


@pytest.mark.parametrize(
    ("backend", "needs"),
    [
        ("sagemaker", ["PREDICTFLOW_SAGEMAKER_ENDPOINT_NAME"]),
        ("aml", ["PREDICTFLOW_AML_MODEL_ID", "PREDICTFLOW_AML_PREDICT_ENDPOINT"]),
    ],
)
def test_a_remote_backend_needs_its_endpoint(backend: str, needs: list[str]) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(VALID | {"PREDICTFLOW_PREDICTOR_BACKEND": backend})
    for name in needs:
        assert f"{name} is not set" in str(raised.value)


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(SettingsError, match="must be one of embedded, sagemaker, aml"):
        Settings.from_env(VALID | {"PREDICTFLOW_PREDICTOR_BACKEND": "oracle"})


def test_a_size_limit_that_needs_too_many_chunks_is_refused() -> None:
    with pytest.raises(SettingsError, match="needs more than 1000 chunks"):
        Settings.from_env(VALID | {"PREDICTFLOW_MAX_FILE_BYTES": str(4096 * 1000 + 1)})


def test_a_handler_fails_at_import_when_its_settings_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from predictflow.local.moto_bridge import load_handler
    from tests.fixtures import ROOT

    for name in VALID:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError, match="PREDICTFLOW_OUTPUT_BUCKET is not set"):
        load_handler(ROOT / "functions" / "fetch", "app.lambda_handler", "fetch_without_settings")
